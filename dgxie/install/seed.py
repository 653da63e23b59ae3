"""Install configs: render a node's user-data, meta-data, vendor-data, preseed or kickstart.

A profile's `template` names its template set (`ubuntu/autoinstall`, `debian/preseed`,
`rhel/kickstart`): the part before `/` picks the directory under `templates/` and so the artefacts
the node can fetch. Rendering uses the one Jinja2 environment (`boot.templates`); the output is
validated (`boot.validate`) before anyone sees it, so a node gets a whole config or none. Before
rendering, the variables are checked too: `admin_user` must be a plain user name, and no variable a
preseed or kickstart template reads may hold a line break (`boot.validate.check_line_values`).

`events_url` in a config carries the node's one-time `install` credential (`nodes.credentials`):
the installer service mints it for the node's own fetch; every other render (an admin's preview,
the agent's plan) shows `PREVIEW_CREDENTIAL` in its place, which opens nothing.
"""

from __future__ import annotations

import hashlib
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from dgxie.boot import templates, urls
from dgxie.boot.decide import EXTERNAL_TEMPLATE
from dgxie.boot.validate import VALIDATORS, RenderError, check_line_values, check_username
from dgxie.boot.vars import Merged, layered, site_layer
from dgxie.errors import Invalid, NotFound
from dgxie.handoff.bootstrap import fetch_command
from dgxie.models import Node
from dgxie.nodes.credentials import boot_token
from dgxie.sections import OciMirrorConfig
from dgxie.site import Site

ARTIFACTS = ("user-data", "meta-data", "vendor-data", "preseed", "kickstart")
FAMILIES: dict[str, dict[str, str]] = {
    "ubuntu": {"user-data": "ubuntu/user-data.j2", "meta-data": "ubuntu/meta-data.j2",
               "vendor-data": "ubuntu/vendor-data.j2"},
    "debian": {"preseed": "debian/preseed.j2"},
    "rhel": {"kickstart": "rhel/kickstart.j2"},
    "rocky": {"kickstart": "rhel/kickstart.j2"},
    # `image/deploy`: dgxie's agent writes an OS image; these seed its first boot (docs/deploy.md)
    "image": {"user-data": "image/user-data.j2", "meta-data": "image/meta-data.j2",
              "vendor-data": "image/vendor-data.j2"},
    # `external`: the installer brings its own config (a DGXIE import's preseed, a site's own
    # kickstart server); dgxie boots the image's cmdline as it is and serves no config
    EXTERNAL_TEMPLATE: {},
}
PREVIEW_CREDENTIAL = "preview"  # in an admin's preview of a config, where the node's credential goes
CREDENTIAL_ARTIFACTS = frozenset({"user-data", "preseed", "kickstart"})  # the ones with `events_url`
CONTENT_TYPES = {"user-data": "text/cloud-config", "vendor-data": "text/cloud-config"}
OS_FAMILY = {"ubuntu": "ubuntu", "debian": "debian", "rhel": "rhel", "rocky": "rhel"}
LINE_BASED = ("preseed", "kickstart")  # one line per setting: no value may hold a line break


@dataclass(frozen=True)
class Served:
    """What a node gets for a config fetch: the text of `artifact`."""

    artifact: str
    text: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.artifact, "text/plain") + "; charset=utf-8"


@dataclass(frozen=True)
class Rendered(Served):
    """A render: the text, the template it came from and the variables with their layers."""

    template: str
    merged: Merged


def _template_line(exc: BaseException, override: Path | None) -> tuple[str | None, int | None]:
    """The innermost template frame of a Jinja2 runtime error (Jinja2 rewrites them to template lines)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        name = templates.relative_name(frame.filename, override)
        if name is not None:
            return name, frame.lineno
    return None, None


def render_template(override: Path | None, name: str, values: dict[str, Any]) -> str:
    """Render one template; any template mistake becomes a RenderError naming template and line."""
    env = templates.environment(override)
    try:
        return env.get_template(name).render(values)
    except jinja2.TemplateSyntaxError as exc:
        where = templates.relative_name(exc.filename, override) or name
        raise RenderError(where, f"syntax error: {exc.message}", line=exc.lineno) from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(name, f"template {exc.name} not found under "
                          f"{', '.join(map(str, templates.search_path(override)))}") from None
    except jinja2.UndefinedError as exc:
        at, line = _template_line(exc, override)
        msg = exc.message or "undefined variable"
        raise RenderError(at or name, msg, line=line, key=msg.split("'")[1] if "'" in msg else None) from None
    except jinja2.TemplateRuntimeError as exc:
        at, line = _template_line(exc, override)
        raise RenderError(at or name, str(exc), line=line) from None
    except (TypeError, ValueError, AttributeError, LookupError, ArithmeticError) as exc:  # a filter on a bad type
        at, line = _template_line(exc, override)
        raise RenderError(at or name, f"{exc.__class__.__name__}: {exc}", line=line) from None


def family_of(node: Node) -> str:
    if node.profile is None:
        raise Invalid(f"{node.hostname}: has no profile, so no install config")
    family = node.profile.template.split("/", 1)[0]
    if family not in FAMILIES:
        raise Invalid(f"profile {node.profile.name}: template {node.profile.template!r} has no install configs "
                      f"(known: {', '.join(sorted(FAMILIES))})")
    return family


def artifacts_of(node: Node) -> tuple[str, ...]:
    return tuple(FAMILIES[family_of(node)])


def install_id(boot_token: str) -> str:
    """A stable id per install (changes with the token on reprovision), never the token itself."""
    return hashlib.sha256(boot_token.encode()).hexdigest()[:12]


def node_vars(site: Site, node: Node, *, credential: str = PREVIEW_CREDENTIAL) -> Merged:
    """Every variable the node's templates see, with the layer each came from; `credential` is
    the node's install credential for its callback URL (`events_url`)."""
    if node.profile is None:
        raise Invalid(f"{node.hostname}: has no profile, so no install config")
    prof = node.profile
    if prof.image is None:
        spec = site.profiles.get(prof.name)
        if spec is not None and spec.image:
            raise Invalid(f"profile {prof.name}: image {spec.image!r} is not registered (dgxie image add)")
        raise Invalid(f"profile {prof.name}: has no image")
    family = family_of(node)
    if family == "image":
        if not isinstance((prof.image.files or {}).get("rootfs"), dict):
            raise Invalid(f"profile {prof.name}: template {prof.template} deploys an OS image, but image "
                          f"{prof.image.name} has no root file system (dgxie image build)")
    elif family != EXTERNAL_TEMPLATE and OS_FAMILY.get(prof.image.os, prof.image.os) != OS_FAMILY.get(family):
        raise Invalid(f"profile {prof.name}: template {prof.template} does not fit image {prof.image.name} "
                      f"(os {prof.image.os})")
    token = boot_token(site.box, node)
    base = urls.node_base_url(site.public_url, token)
    facts: dict[str, Any] = {
        "hostname": node.hostname, "mac": node.mac, "macs": [i.mac for i in node.interfaces], "ip": node.ip,
        "profile": prof.name, "role": node.role, "image": prof.image.name, "os": prof.image.os,
        "arch": prof.image.arch, "public_url": site.public_url, "seed_url": base,
        "events_url": urls.events_url(site.public_url, token, credential),
        "instance_id": f"dgxie-{node.hostname}-{install_id(token)}",
        # cloud-init bootstrap roles: the installed system fetches its role script at first boot
        "bootstrap_command": fetch_command(site.public_url, token) if _bootstraps_by_script(site, node)
                             else "",
    }
    ident = site.identity
    site_vars = site_layer(ident.name, ident.domain, ident.timezone, tuple(ident.ssh_authorized_keys), ident.vars)
    merged = layered(global_vars=dict(site.vars), site=site_vars, profile=prof.vars, node=node.vars, facts=facts)
    derived = _derived(site, merged.values)
    merged.values.update(derived)
    merged.source.update(dict.fromkeys(derived, "dgxie"))
    return merged


def _bootstraps_by_script(site: Site, node: Node) -> bool:
    role = site.roles.get(node.role) if node.role else None
    return role is not None and role.bootstrap == "cloud-init"


def _derived(site: Site, values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"fqdn": f"{values['hostname']}.{values['domain']}" if values.get("domain")
                           else values["hostname"], "apt_mirror_url": None,
                           # containerd pulls each mirrored registry through dgxie's /v2/
                           "registry_hosts": [{"host": m.upstream_host, "server": m.registry}
                                              for m in site.mirrors if isinstance(m, OciMirrorConfig)]}
    name = values.get("apt_mirror")
    if name:
        if name not in site.apt_mirrors:
            known = ", ".join(site.apt_mirrors) or "none configured"
            raise Invalid(f"apt_mirror: no APT mirror named {name!r} (known: {known})")
        out["apt_mirror_url"] = f"{site.public_url}/mirror/apt/{name}"
    return out


def template_of(node: Node, artifact: str) -> str:
    """The template that renders `artifact` for `node`; NotFound if its profile has no such file."""
    if artifact not in ARTIFACTS:
        raise NotFound(f"no artefact {artifact!r} (known: {', '.join(ARTIFACTS)})")
    family = family_of(node)
    template = FAMILIES[family].get(artifact)
    if template is None and family == EXTERNAL_TEMPLATE:
        raise NotFound(f"{node.hostname}: profile {node.profile.name if node.profile else '-'} is external: its "
                       f"installer brings its own config, dgxie serves no {artifact}")
    if template is None:
        raise NotFound(f"{node.hostname}: template set {family} has no {artifact} "
                       f"(it has {', '.join(FAMILIES[family])})")
    return template


def render(site: Site, node: Node, artifact: str, *, credential: str = PREVIEW_CREDENTIAL) -> Rendered:
    """Render and validate one artefact for `node`; raise NotFound if its profile has no such file."""
    template = template_of(node, artifact)
    merged = node_vars(site, node, credential=credential)
    check_username(merged.values, template, artifact)
    if artifact in LINE_BASED:
        used = templates.referenced(template, site.templates_dir)
        check_line_values(merged.values, merged.source, used, template, artifact)
    text = render_template(site.templates_dir, template, dict(merged.values))
    VALIDATORS[artifact](text, template)
    return Rendered(artifact=artifact, template=template, text=text, merged=merged)
