"""`dgxie agent build`: the deploy agent's kernel + initramfs, registered as image `agent`."""

from __future__ import annotations

import typer

from dgxie.cli.common import actor, context, dump_json, err_console
from dgxie.cli.image_cmd import print_result, reporter
from dgxie.imaging.build import build, make_agent

app = typer.Typer(help="dgxie's deploy agent (kernel + initramfs).", no_args_is_help=True, rich_markup_mode=None)


@app.command("build")
def build_(mirror: str = typer.Option(..., "--mirror", help="APT mirror to build from (needs ?essential and "
                                      "?priority(required) in its filter)"),
           suite: str | None = typer.Option(None, help="suite (default: the recipe's, bookworm)"),
           name: str = typer.Option("agent", help="image name to register"),
           recipe: str = typer.Option("agent", help="recipe under images/, or a recipe directory"),
           as_json: bool = typer.Option(False, "--json", help="print the result as JSON")) -> None:
    """Build the agent's kernel + initramfs from MIRROR and register it as image `agent`; nothing
    is rebuilt when the inputs are unchanged."""
    ctx = context()
    res = build(ctx.sessions, ctx.site, name=name, mirror=mirror, suite=suite, recipe=recipe, packages=[],
                make=make_agent(ctx.site), actor=actor(), report=reporter(name))
    if as_json:
        dump_json(res.__dict__)
        return
    print_result(res)
    if res.status == "built":
        err_console.print(f"agent {name}: initramfs {res.files['initrd.img']['size']} B compressed, "
                          f"{res.files['build'].get('initramfs_bytes', 0)} B unpacked")
