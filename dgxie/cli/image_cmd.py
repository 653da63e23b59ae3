"""`dgxie image add|list|delete|build`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from dgxie.catalog import images
from dgxie.cli.common import actor, console, context, dump_json, err_console, session
from dgxie.cli.output import Format, json_option, output_option, wants_json
from dgxie.errors import Invalid, NotFound
from dgxie.imaging.bootstrap import Report
from dgxie.imaging.build import BuildResult, build, make_image

app = typer.Typer(help="Boot images (kernel + initrd + files, stored by sha256).", no_args_is_help=True,
                  rich_markup_mode=None)


def _extra(values: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise Invalid(f"--file {v!r}: expected NAME=PATH")
        out[name] = Path(path)
    return out


@app.command("add")
def add(name: str = typer.Argument(..., help="image name"), kernel: Path = typer.Option(..., help="kernel file"),
        initrd: Path = typer.Option(..., help="initrd file"),
        cmdline: str = typer.Option("", help="kernel cmdline; {base} {public_url} {hostname} {mac} filled per node"),
        os: str = typer.Option("ubuntu", "--os", help="operating system: ubuntu, debian, rhel..."),
        arch: str = typer.Option("x86_64", help="CPU architecture"),
        file: list[str] = typer.Option([], "--file", help="another file served with the image: NAME=PATH (repeat)"),
        as_json: bool = json_option()) -> None:
    """Register an image: its files are copied into the data dir by sha256."""
    ctx = context()
    with session() as s:
        out = images.to_out(images.add_image(s, ctx.settings.data_dir, name=name, kernel=kernel, initrd=initrd,
                                             cmdline=cmdline, os=os, arch=arch, extra=_extra(file), actor=actor()))
    if as_json:
        dump_json(out)
        return
    err_console.print(f"image {out.name} registered: " + ", ".join(
        f"{n} ({f['sha256'][:12]}, {f['size']} B)" for n, f in out.files.items()))


@app.command("list")
def list_(output: Format = output_option(), as_json: bool = json_option()) -> None:
    """List registered images."""
    with session() as s:
        rows = [images.to_out(i) for i in images.list_images(s)]
    if wants_json(output, as_json):
        dump_json(rows)
        return
    t = Table("name", "os", "arch", "kernel", "initrd", "files", "cmdline")
    for r in rows:
        t.add_row(r.name, r.os, r.arch, r.kernel, r.initrd, str(len(r.files)), r.cmdline)
    console.print(t)


@app.command("delete")
def delete(name: str = typer.Argument(..., help="image name")) -> None:
    """Delete an image no profile uses; its stored files are kept."""
    with session() as s:
        images.delete_image(s, images.image_by_name(s, name, missing=NotFound), actor=actor())
    err_console.print(f"image {name} deleted")


def reporter(name: str) -> Report:
    """Progress lines on stderr: `image NAME: PHASE: message` (like a mirror sync's phases)."""
    def report(phase: str, message: str) -> None:
        err_console.print(f"image {name}: {phase}: {message}", highlight=False, markup=False, soft_wrap=True)
    return report


def print_result(res: BuildResult) -> None:
    if res.status == "up to date":
        err_console.print(f"image {res.name}: up to date (key {res.key[:12]})")
    elif res.status == "reused":
        err_console.print(f"image {res.name}: same inputs as image {res.reused_from}; registered with its files")
    else:
        err_console.print(f"image {res.name}: built in {res.seconds:.0f} s: " + ", ".join(
            f"{n} ({f['size']} B)" for n, f in res.files.items() if isinstance(f, dict) and "role" in f))


@app.command("build")
def build_(name: str = typer.Argument(..., help="image name"),
           mirror: str = typer.Option(..., "--mirror", help="APT mirror to build from (its filter "
                                                 "needs ?essential and ?priority(required))"),
           suite: str | None = typer.Option(None, help="suite (default: the recipe's, bookworm)"),
           recipe: str = typer.Option("debian", help="recipe under images/, or a recipe directory"),
           package: list[str] = typer.Option([], "--package", help="another package to install (repeat)"),
           as_json: bool = json_option()) -> None:
    """Build image NAME (rootfs.tar.zst + kernel + initrd) from MIRROR with mmdebstrap; nothing is
    rebuilt or stored twice when the inputs are unchanged."""
    ctx = context()
    res = build(ctx.sessions, ctx.site, name=name, mirror=mirror, suite=suite, recipe=recipe, packages=package,
                make=make_image(ctx.site), actor=actor(), report=reporter(name))
    if as_json:
        dump_json(res.__dict__)
        return
    print_result(res)
