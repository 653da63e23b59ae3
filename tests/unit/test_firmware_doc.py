"""docs/firmware.md, section "Updates", kept true: every option its `dgxie firmware update` lines
show is an option of the command, and every API operation it shows is a route."""

from __future__ import annotations

import re

import typer

from dgxie.cli import app
from tests.support.paths import REPO


def _updates_block() -> str:
    text = (REPO / "docs" / "firmware.md").read_text()
    section = text.split("## Updates\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)[0]


def test_update_options_in_the_doc_exist() -> None:
    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    fw = root.get_command(ctx, "firmware")  # type: ignore[attr-defined]
    cmd = fw.get_command(typer.Context(fw), "update")
    known = {o for p in cmd.params for o in [*p.opts, *p.secondary_opts]}
    block = _updates_block()
    shown = set(re.findall(r"(--[a-z][a-z0-9-]*)", " ".join(ln for ln in block.replace("\\\n", " ").splitlines()
                                                             if "firmware update" in ln)))
    assert {"--tag", "--baseline", "--no-drain", "--wait-server", "--batch", "--package"} <= shown
    assert shown - known == set()


def test_update_api_lines_in_the_doc_are_routes() -> None:
    from dgxie.api.v1.firmware_updates import router

    routes = {(m, r.path) for r in router.routes for m in getattr(r, "methods", ())}
    assert routes
    shown = re.findall(r"\b(GET|POST|DELETE) (/api/v1/firmware/updates(?:/ID)?)", _updates_block())
    assert len(shown) == 4
    for method, path in shown:
        assert (method, path.removeprefix("/api/v1").replace("/ID", "/{update_id}")) in routes, (method, path)
