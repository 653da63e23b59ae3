"""`dgxie render NODE ARTIFACT [--explain]`: exactly what the node would be served.

Artefacts dispatch through `RENDERERS`: the iPXE script (dgxie.ipxe.render) and the seeds (dgxie.install.seed).
`--explain` starts with the template file used (the site's `handoff.templates_dir` copy or the shipped one).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import typer
from sqlalchemy.orm import Session

from dgxie.boot import templates
from dgxie.boot.vars import Merged
from dgxie.cli.common import session
from dgxie.cli.common import site as cli_site
from dgxie.errors import Invalid, NotFound
from dgxie.install import seed
from dgxie.ipxe import render as boot_render
from dgxie.nodes import service
from dgxie.site import Site

Renderer = Callable[[Session, Site, str], tuple[str, Merged | None, str]]
"""`renderer(session, site, node_ref) -> (text, merged vars or None, template name)`."""


def _seed(artifact: str) -> Renderer:
    def run(s: Session, site: Site, ref: str) -> tuple[str, Merged | None, str]:
        r = seed.render(site, service.get_node(s, ref), artifact)
        return r.text, r.merged, r.template

    return run


def _ipxe(s: Session, site: Site, ref: str) -> tuple[str, Merged | None, str]:
    """The node's iPXE script, by the same function as GET /boot/ipxe (an unknown MAC gets the
    "not enrolled" script, as it would over HTTP)."""
    try:
        mac = service.get_node(s, ref).mac or ref
    except NotFound:
        mac = ref
    script = boot_render.ipxe_script(s.connection(), site, mac)
    return script.text, None, script.template


def template_line(site: Site, name: str) -> str:
    """`# template: NAME (site|shipped: FILE)`: which file `name` resolved to (a site's
    `handoff.templates_dir` copy wins over the shipped one)."""
    path = templates.find(name, site.templates_dir)
    origin = "site" if site.templates_dir is not None and path == site.templates_dir / name else "shipped"
    return f"# template: {name} ({origin}: {path})"


def ipxe_explain(s: Session, site: Site, ref: str) -> list[str]:
    """`render NODE ipxe --explain`: the boot decision, and what dgxie added to the image's cmdline."""
    try:
        mac = service.get_node(s, ref).mac or ref
    except NotFound:
        mac = ref
    script = boot_render.ipxe_script(s.connection(), site, mac)
    decision = script.decision
    return [f"# decision: {decision.action.value} ({decision.reason})", template_line(site, script.template),
            *[f"# note: {n}" for n in script.notes]]


RENDERERS: dict[str, Renderer] = {a: _seed(a) for a in seed.ARTIFACTS} | {"ipxe": _ipxe}


def explain_lines(merged: Merged) -> list[str]:
    """`VARIABLE  LAYER  VALUE  [# over LOWER, ...]`, one per variable (layers: default < global <
    site < profile < node; `dgxie` marks the node's facts)."""
    rows = merged.explain()
    width = max((len(k) for k, *_ in rows), default=8)
    out = [f"{'# variable':<{width}}  {'layer':<7}  value  # layers it overrides"]
    for key, value, layer, lower in rows:
        over = f"  # over {', '.join(lower)}" if lower else ""
        out.append(f"{key:<{width}}  {layer:<7}  {json.dumps(value)}{over}")
    return out


def render(node: str = typer.Argument(..., help="hostname or MAC"),
           artifact: str = typer.Argument(..., help=", ".join(RENDERERS)),
           explain: bool = typer.Option(False, "--explain", help="show the template file used, every variable and the "
                                                      "layer it came from")
           ) -> None:
    """Print what NODE would be served as ARTIFACT (nothing changes)."""
    renderer = RENDERERS.get(artifact)
    if renderer is None:
        raise Invalid(f"unknown artefact {artifact!r} (known: {', '.join(RENDERERS)})")
    site = cli_site()
    if explain and artifact == "ipxe":
        with session() as s:
            sys.stdout.write("\n".join(ipxe_explain(s, site, node)) + "\n")
        return
    with session() as s:
        text, merged, template = renderer(s, site, node)
    if explain:
        lines = [template_line(site, template)] + (explain_lines(merged) if merged is not None else [])
        sys.stdout.write("\n".join(lines) + "\n")
        return
    sys.stdout.write(text)
