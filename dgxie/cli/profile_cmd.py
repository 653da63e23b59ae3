"""`dgxie profile list|show|add|set|delete`: the same service functions as /api/v1/profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml
from rich.table import Table

from dgxie.catalog import profiles
from dgxie.catalog.schemas import ProfileIn, ProfileOut, ProfileUpdate
from dgxie.cli.common import actor, console, dump_json, err_console, session, site
from dgxie.cli.output import Format, json_option, output_option, render_record, wants_json
from dgxie.errors import Invalid, NotFound
from dgxie.validation import parse

app = typer.Typer(help="Install profiles: an image, a template set, a role and vars.", no_args_is_help=True,
                  rich_markup_mode=None)

VAR_HELP = "a variable KEY=VALUE (VALUE read as YAML: 8, true, [a, b]); repeat"


def _vars(pairs: list[str], file: Path | None) -> dict[str, Any]:
    """`--vars-file` (a YAML mapping) overlaid with the `--var KEY=VALUE` pairs."""
    out: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = yaml.safe_load(file.read_text())
        except OSError as exc:
            raise Invalid(f"--vars-file {file}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise Invalid(f"--vars-file {file}: not YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise Invalid(f"--vars-file {file}: expected a mapping of variables")
        out.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise Invalid(f"--var {pair!r}: expected KEY=VALUE")
        try:
            out[key] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            out[key] = value
    return out


def _print(out: ProfileOut, as_json: bool) -> None:
    dump_json(out) if as_json else render_record(out.model_dump(mode="json"))


@app.command("list")
def list_(output: Format = output_option(), as_json: bool = json_option()) -> None:
    """List profiles (from the API, the CLI and the config file: see `source`)."""
    with session() as s:
        rows = [profiles.to_out(p) for p in profiles.list_profiles(s)]
    if wants_json(output, as_json):
        dump_json(rows)
        return
    t = Table("name", "image", "template", "role", "source", "vars", "description")
    for r in rows:
        t.add_row(r.name, r.image or "-", r.template, r.role or "-", r.source, ",".join(r.vars) or "-",
                  r.description)
    console.print(t)


@app.command("show")
def show(name: str = typer.Argument(..., help="profile name"), output: Format = output_option(),
         as_json: bool = json_option()) -> None:
    """Show one profile."""
    with session() as s:
        out = profiles.to_out(profiles.profile_by_name(s, name, missing=NotFound))
    _print(out, wants_json(output, as_json))


@app.command("add")
def add(name: str = typer.Argument(..., help="profile name"),
        image: str | None = typer.Option(None, help="image to boot (see dgxie image list)"),
        template: str = typer.Option("ubuntu/autoinstall", help="template set, e.g. ubuntu/autoinstall"),
        role: str | None = typer.Option(None, help="site role, e.g. slurmd"),
        description: str = typer.Option("", help="free text"),
        var: list[str] = typer.Option([], "--var", help=VAR_HELP),
        vars_file: Path | None = typer.Option(None, help="YAML file with the profile's variables"),
        as_json: bool = json_option()) -> None:
    """Create a profile."""
    body = parse(ProfileIn, {"name": name, "image": image, "template": template, "role": role,
                             "description": description, "vars": _vars(var, vars_file)})
    with session() as s:
        out = profiles.to_out(profiles.create_profile(s, site(), body, actor=actor(), source="cli"))
    dump_json(out) if as_json else err_console.print(f"profile {out.name} created")


@app.command("set")
def set_(name: str = typer.Argument(..., help="profile name"),
         image: str | None = typer.Option(None, help="image to boot; '' clears it"),
         template: str | None = typer.Option(None, help="template set, e.g. ubuntu/autoinstall"),
         role: str | None = typer.Option(None, help="site role; '' clears it"),
         description: str | None = typer.Option(None, help="free text"),
         var: list[str] = typer.Option([], "--var", help=VAR_HELP + "; merged into the profile's vars"),
         vars_file: Path | None = typer.Option(None, help="YAML file: replaces all of the profile's variables"),
         as_json: bool = json_option()) -> None:
    """Change a profile; only the options given change."""
    data: dict[str, Any] = {}
    for key, value in (("image", image), ("role", role)):
        if value is not None:
            data[key] = value or None
    for key, value in (("template", template), ("description", description)):
        if value is not None:
            data[key] = value
    with session() as s:
        p = profiles.profile_by_name(s, name, missing=NotFound)
        if var or vars_file is not None:
            data["vars"] = ({} if vars_file is not None else dict(p.vars)) | _vars(var, vars_file)
        if not data:
            raise Invalid("nothing to change (see dgxie profile set --help)")
        body = parse(ProfileUpdate, data)
        out = profiles.to_out(profiles.update_profile(s, site(), p, body, actor=actor()))
    if out.source == "config":
        err_console.print(f"note: profile {out.name} is declared in the config file, which wins at the next start")
    dump_json(out) if as_json else err_console.print(f"profile {out.name} updated")


@app.command("delete")
def delete(name: str = typer.Argument(..., help="profile name")) -> None:
    """Delete a profile no node uses."""
    with session() as s:
        profiles.delete_profile(s, profiles.profile_by_name(s, name, missing=NotFound), actor=actor())
    err_console.print(f"profile {name} deleted")
