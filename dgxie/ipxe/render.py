"""The iPXE script of a MAC: the node's row and image, the boot decision, the template filled.

Templates come from the one environment (`boot.templates`), compiled once per process: the site's
override folder (`handoff.templates_dir`) first, then the shipped templates, file by file.

`ipxe_script(conn, site, mac)` is the one path from a MAC to its iPXE script: the boot decision
(`boot.decide`) picks the template, this module fills it. It reads the database once (node, profile
template and image in one prebuilt query, on the driver's cursor; the agent or discovery image
only when the decision boots one), reads only, on one connection: this is the script cache's miss
path, which a boot storm of new MACs takes. The API endpoint, the fast HTTP path and
`dgxie render NODE ipxe` all call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from dgxie.boot import installargs, templates
from dgxie.boot.decide import Action, Decision, decide, deploys_image
from dgxie.boot.urls import expand_cmdline, image_file_url
from dgxie.dbdirect import Prepared
from dgxie.errors import Invalid, Unavailable
from dgxie.models import Image, Interface, Node, Profile
from dgxie.nodes import credentials
from dgxie.nodes.macs import canonical_mac
from dgxie.site import Site


def render(name: str, context: dict[str, Any], override: Path | None = None) -> str:
    """Render iPXE template `name` (e.g. "ipxe/install.ipxe.j2") from `override` over the shipped
    templates; a missing variable or template is a 503 (the script is not available), never a
    half-rendered script."""
    try:
        return templates.environment(override).get_template(name).render(context)
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
    notes: tuple[str, ...] = ()  # what dgxie added or noticed (`dgxie render NODE ipxe --explain`)
    template: str = ""  # the template's name, e.g. "ipxe/install.ipxe.j2"


@dataclass(frozen=True)
class BootImage:
    """The columns of an image a script needs (read as one row, no ORM object)."""

    name: str
    kernel: str
    initrd: str
    cmdline: str
    files: dict[str, Any]


@dataclass(frozen=True)
class Target:
    """What the script of a MAC depends on in the database: the node, its profile's template and
    its profile's image, read in one query (`target()`, None for an unknown MAC)."""

    hostname: str
    state: str
    boot_nonce: str
    template: str | None
    image: BootImage | None


_IMAGE_COLUMNS = (Image.name, Image.kernel, Image.initrd, Image.cmdline, Image.files)
# built once (statement construction costs as much as the query): the MAC is a bound parameter
_TARGET = Prepared(select(Node.hostname, Node.state, Node.boot_nonce, Profile.template, *_IMAGE_COLUMNS)
           .select_from(Interface).join(Node, Node.id == Interface.node_id)
           .outerjoin(Profile, Profile.id == Node.profile_id).outerjoin(Image, Image.id == Profile.image_id)
           .where(Interface.mac == bindparam("mac")))
_IMAGES = select(*_IMAGE_COLUMNS).where(Image.name.in_(bindparam("names", expanding=True)))


def target(conn: Connection, mac: str) -> Target | None:
    """The node that owns `mac` (canonical), with its profile's template and image: one query, on
    the driver's cursor (`dbdirect`: SQLAlchemy's execution was a third of an uncached script)."""
    rows = _TARGET.all(conn, {"mac": mac})
    if not rows:
        return None
    hostname, state, nonce, template, *img = rows[0]
    image = BootImage(img[0], img[1], img[2], img[3] or "", img[4] or {}) if img[0] is not None else None
    return Target(hostname, state, nonce, template, image)


def boot_images(conn: Connection, names: set[str]) -> dict[str, BootImage]:
    """The images named (the agent, the discovery image), by name: one query."""
    rows = conn.execute(_IMAGES, {"names": sorted(names)})
    return {r[0]: BootImage(r[0], r[1], r[2], r[3] or "", r[4] or {}) for r in rows}


def _image_context(site: Site, image: BootImage, *, token: str, hostname: str, mac: str,
                   template: str | None = None) -> dict[str, Any]:
    """The image's kernel, initrd (none when the image has none) and cmdline, with the arguments
    the profile's installer needs added (`boot.installargs`) and the placeholders filled."""
    raw, added = installargs.complete(template, image.cmdline)
    cmdline = expand_cmdline(raw, public_url=site.public_url, boot_token=token, hostname=hostname, mac=mac)
    notes = [f"added to image {image.name}'s cmdline for template {template}: {' '.join(added)}"] if added else []
    notes += [f"the cmdline points the installer at {u}, not at dgxie's config for this node"
              for u in installargs.what_points_elsewhere(cmdline)
              if installargs.family(template) in ("ubuntu", "debian", "rhel", "rocky")]
    return {"image": image.name, "kernel_url": image_file_url(site.public_url, image.name, image.kernel),
            "initrd_url": image_file_url(site.public_url, image.name, image.initrd) if image.initrd else "",
            "initrd_name": image.initrd, "cmdline": cmdline, "notes": notes}


def _agent_context(site: Site, agent: BootImage, *, hostname: str, mac: str) -> dict[str, Any]:
    """The deploy agent's boot: no node secret on its command line, only where dgxie is and which
    MAC it booted from (the agent proves the rest from its address; docs/deploy.md)."""
    ctx = _image_context(site, agent, token="", hostname=hostname, mac=mac)
    if "dgxie.url=" not in ctx["cmdline"]:
        ctx["cmdline"] = f"{ctx['cmdline']} dgxie.url={site.public_url} dgxie.mac={mac}".strip()
    return ctx


def _boot_image(conn: Connection, site: Site, node: Target | None,
                decision: Decision) -> tuple[Decision, BootImage | None, bool]:
    """(decision, image to boot, whether it is the agent) after checking the images exist; the
    agent and discovery images are read only for a decision that needs them."""
    if decision.action == Action.INSTALL and node is not None and not deploys_image(node.template):
        return decision, node.image, False
    if decision.action not in (Action.INSTALL, Action.DISCOVERY, Action.ERASE):
        return decision, None, False
    names = {"agent": site.boot.agent_image, "disc": site.boot.discovery_image or site.boot.agent_image}
    found = boot_images(conn, set(names.values()))
    agent = found.get(names["agent"])
    if decision.action == Action.INSTALL:  # the profile deploys an image: the agent writes it
        if agent is None:
            return Decision(Action.IGNORE, "its profile deploys an image but the agent is not built "
                                           "(dgxie agent build)"), None, False
        return decision, agent, True
    if decision.action == Action.DISCOVERY:
        disc = found.get(names["disc"])
        if disc is None:
            return Decision(Action.IGNORE, "discovery is on but no discovery image is registered"), None, False
        return decision, disc, disc.name == site.boot.agent_image
    if agent is None:
        return Decision(Action.IGNORE, "erasing needs the agent (dgxie agent build)"), None, False
    return decision, agent, True


def _local_efi_url(conn: Connection, site: Site) -> str:
    """The agent's UEFI local-boot loader (imaging.localboot), or "" when no agent build has one."""
    agent = boot_images(conn, {site.boot.agent_image}).get(site.boot.agent_image)
    if agent is None or not isinstance(agent.files.get("grubx64.efi"), dict):
        return ""
    return image_file_url(site.public_url, agent.name, "grubx64.efi")


def ipxe_context(conn: Connection, site: Site, mac: str) -> tuple[str, dict[str, Any], Decision]:
    """(template name, context, decision) for the iPXE script of `mac`."""
    try:
        mac = canonical_mac(mac)
    except ValueError:
        raise Invalid(f"{mac!r} is not a MAC address") from None
    node = target(conn, mac)
    state = node.state if node is not None else None
    decision = decide(state, discovery=site.discovery, has_image=node is not None and node.image is not None)
    decision, boot_image, is_agent = _boot_image(conn, site, node, decision)
    ctx: dict[str, Any] = {"mac": mac, "hostname": node.hostname if node else "", "reason": decision.reason,
                           "action": decision.action.value}
    # `credentials.boot_token()` from the nonce alone (there is no ORM node here)
    token = site.box.derive(credentials.BOOT_TOKEN_LABEL, node.boot_nonce) if node is not None else ""
    if decision.action == Action.LOCAL_DISK:
        ctx["local_efi_url"] = _local_efi_url(conn, site)
    if boot_image is not None and is_agent:
        ctx |= _agent_context(site, boot_image, hostname=ctx["hostname"], mac=mac)
    elif boot_image is not None:
        ctx |= _image_context(site, boot_image, token=token, hostname=ctx["hostname"], mac=mac,
                              template=node.template if node is not None else None)
    elif decision.action == Action.IGNORE:
        ctx["message"] = "is not enrolled" if node is None else f"has nothing to boot: {decision.reason}"
    return f"ipxe/{decision.action.value}.ipxe.j2", ctx, decision


def ipxe_script(conn: Connection, site: Site, mac: str) -> Script:
    """Exactly what `mac` gets from `GET /boot/ipxe?mac=...` (reads only, on `conn`)."""
    name, ctx, decision = ipxe_context(conn, site, mac)
    return Script(render(name, ctx, site.templates_dir), decision, tuple(ctx.get("notes", ())), name)
