"""Extra BMC endpoints of a node (DGX H100: the HGX baseboard's own Redfish service)."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from dgxie.errors import Conflict, Invalid, NotFound
from dgxie.events import record
from dgxie.models import BmcEndpoint, Node
from dgxie.nodes.bmcs import check_url_allowed
from dgxie.site import Site

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def list_endpoints(session: Session, node: Node) -> list[BmcEndpoint]:
    return list(session.scalars(select(BmcEndpoint).where(BmcEndpoint.node_id == node.id).order_by(BmcEndpoint.name)))


def add_endpoint(session: Session, site: Site, node: Node, *, name: str, url: str, username: str | None = None,
                 password: str | None = None, actor: str) -> BmcEndpoint:
    if not NAME_RE.match(name) or name == "bmc":
        raise Invalid(f"name: {name!r} must be lower-case letters/digits/-/_ (and not 'bmc', the node's own)")
    if not url.startswith(("http://", "https://")):
        raise Invalid(f"url: {url!r}: extra endpoints are Redfish, http(s)://HOST[:PORT]")
    check_url_allowed(site, url, field="url")
    if any(e.name == name for e in list_endpoints(session, node)):
        raise Conflict(f"{node.hostname} already has an endpoint {name!r}")
    ep = BmcEndpoint(node_id=node.id, name=name, url=url.rstrip("/"), username=username,
                     password_enc=site.box.seal(password) if password is not None else None)
    session.add(ep)
    session.flush()
    record(session, actor=actor, kind="node.bmc_endpoint.add", node=node, reason=f"endpoint {name} {ep.url}",
           data={"name": name, "url": ep.url})
    return ep


def remove_endpoint(session: Session, node: Node, name: str, *, actor: str) -> None:
    ep = next((e for e in list_endpoints(session, node) if e.name == name), None)
    if ep is None:
        raise NotFound(f"{node.hostname} has no endpoint {name!r}")
    session.delete(ep)
    record(session, actor=actor, kind="node.bmc_endpoint.remove", node=node, reason=f"endpoint {name}",
           data={"name": name})
