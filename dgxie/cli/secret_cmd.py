"""`dgxie secret set NAME [--from-file F | --value-stdin] [--role R]`, `list`, `delete` (admin)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from dgxie.cli.common import actor, console, dump_json, err_console, session, site
from dgxie.cli.output import Format, json_option, output_option, wants_json
from dgxie.errors import Invalid

app = typer.Typer(help="Secrets given to nodes' bootstrap scripts (join tokens, munge keys).", no_args_is_help=True,
                  rich_markup_mode=None)


def _read_value(from_file: Path | None, value_stdin: bool) -> str:
    if (from_file is None) == (not value_stdin):
        raise Invalid("give exactly one of --from-file F or --value-stdin (never the value on the command line)")
    try:
        raw = from_file.read_bytes() if from_file is not None else sys.stdin.buffer.read()
    except OSError as exc:
        raise Invalid(f"{from_file}: {exc.strerror}") from None
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise Invalid("the value is not text; store binary keys as base64 (base64 -w0 FILE | dgxie secret set "
                      "NAME --value-stdin)") from None
    return text.rstrip("\n") if value_stdin else text.rstrip("\r\n")


@app.command("set")
def set_(name: str = typer.Argument(..., help="secret name"),
         from_file: Path | None = typer.Option(None, "--from-file", help="read the value from FILE"),
         value_stdin: bool = typer.Option(False, "--value-stdin", help="read the value from standard input"),
         role: list[str] = typer.Option([], "--role", help="only nodes of this role receive it (repeatable)")) -> None:
    """Store a secret encrypted (replacing any value of that name)."""
    from dgxie.handoff import secrets

    value = _read_value(from_file, value_stdin)
    with session() as s:
        secrets.set_secret(s, site(), name, value, roles=role, actor=actor())
    err_console.print(f"secret {name} stored")


@app.command("list")
def list_(output: Format = output_option(), as_json: bool = json_option()) -> None:
    """Secret names and the roles that may receive them (never the values)."""
    from dgxie.handoff import secrets

    with session() as s:
        rows = [secrets.to_out(x) for x in secrets.list_secrets(s)]
    if wants_json(output, as_json):
        dump_json(rows)
        return
    t = Table("name", "roles", "updated")
    for r in rows:
        t.add_row(r.name, ", ".join(r.roles) or "(any)", str(r.updated_at))
    console.print(t)


@app.command("delete")
def delete(name: str = typer.Argument(..., help="secret name")) -> None:
    """Delete a secret; nodes get it no more."""
    from dgxie.handoff import secrets

    with session() as s:
        secrets.delete_secret(s, name, actor=actor())
    err_console.print(f"secret {name} deleted")
