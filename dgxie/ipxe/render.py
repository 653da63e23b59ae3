"""The iPXE script of a MAC: the node's row and image, the boot decision, the template filled.

Templates come from the one environment (`boot.templates`), compiled once per process.

`ipxe_script(session, site, mac)` is the one path from a MAC to its iPXE script: the boot decision
(`boot.decide`) picks the template, this module fills it. The API endpoint, the fast HTTP path and
`dgxie render NODE ipxe` all call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import Session

from dgxie.boot import templates
from dgxie.boot.decide import Action, Decision, decide
from dgxie.boot.urls import expand_cmdline, image_file_url
from dgxie.errors import Invalid, Unavailable
from dgxie.models import Image, Interface, Node
from dgxie.nodes.macs import canonical_mac
from dgxie.site import Site


def render(name: str, context: dict[str, Any]) -> str:
    """Render iPXE template `name` (e.g. "ipxe/install.ipxe.j2"); a missing variable or template
    is a 503 (the script is not available), never a half-rendered script."""
    try:
        return templates.environment().get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise Unavailable(f"template {exc.name} not found") from None
    except jinja2.UndefinedError as exc:
        raise Unavailable(f"template {name}: {exc.message}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise Unavailable(f"template {name} line {exc.lineno}: {exc.message}") from None


@dataclass(frozen=True)
class Script:
    text: str
    decision: Decision


def _image_context(site: Site, image: Image, *, token: str, hostname: str, mac: str) -> dict[str, Any]:
    cmdline = expand_cmdline(image.cmdline, public_url=site.public_url, boot_token=token, hostname=hostname, mac=mac)
    return {"image": image.name, "kernel_url": image_file_url(site.public_url, image.name, image.kernel),
            "initrd_url": image_file_url(site.public_url, image.name, image.initrd),
            "initrd_name": image.initrd, "cmdline": cmdline}


def ipxe_context(session: Session, site: Site, mac: str) -> tuple[str, dict[str, Any], Decision]:
    """(template name, context, decision) for the iPXE script of `mac`."""
    try:
        mac = canonical_mac(mac)
    except ValueError:
        raise Invalid(f"{mac!r} is not a MAC address") from None
    node = session.scalar(select(Node).join(Interface).where(Interface.mac == mac))
    image = node.profile.image if node is not None and node.profile is not None else None
    disc = None
    if site.boot.discovery_image:
        disc = session.scalar(select(Image).where(Image.name == site.boot.discovery_image))
    state = node.state if node is not None else None
    decision = decide(state, discovery=site.discovery, has_image=image is not None)
    if decision.action == Action.DISCOVERY and disc is None:
        decision = Decision(Action.IGNORE, "discovery is on but no discovery image is registered")
    ctx: dict[str, Any] = {"mac": mac, "hostname": node.hostname if node else "", "reason": decision.reason,
                           "action": decision.action.value}
    token = node.boot_token if node is not None else ""
    if decision.action == Action.INSTALL and image is not None:
        ctx |= _image_context(site, image, token=token, hostname=ctx["hostname"], mac=mac)
    elif decision.action == Action.DISCOVERY and disc is not None:
        ctx |= _image_context(site, disc, token=token, hostname=ctx["hostname"], mac=mac)
    elif decision.action == Action.IGNORE:
        ctx["message"] = "is not enrolled" if node is None else f"has nothing to boot: {decision.reason}"
    return f"ipxe/{decision.action.value}.ipxe.j2", ctx, decision


def ipxe_script(session: Session, site: Site, mac: str) -> Script:
    """Exactly what `mac` gets from `GET /boot/ipxe?mac=...`."""
    name, ctx, decision = ipxe_context(session, site, mac)
    return Script(render(name, ctx), decision)
