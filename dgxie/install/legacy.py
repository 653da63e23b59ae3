"""DGXIE's install report, for profiles imported from it (template `external`).

DGXIE's preseed ends with `curl -X POST -d action=end http://HTTP_IP:HTTP_PORT/install` (its
`start` script adds it to the DGX ISO's late_command; deepops ad241ba7^ src/containers/dgxie);
`action=start` was its early command. dgxie takes the same call at `POST /install`, so a DGXIE
seed imported as it is reports to dgxie when dgxie listens where DGXIE did (or the seed's URL is
changed). Like DGXIE's, it carries no token and no credential: the node is the one whose address
the call comes from (its reserved IP or a live DHCP lease; a `boot.trusted_networks` relay names
no node), and the call is taken only for a node whose profile is `external` and which is enrolled
or installing: `start` -> installing, `end` -> installed (then its role's bootstrap, as after any
install). No such node is a 404, another state a 409, another action a 422; nothing changes.
docs/security.md says what this trusts.
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.boot.decide import EXTERNAL_TEMPLATE
from dgxie.boot.state import State
from dgxie.db import session_scope
from dgxie.errors import Conflict, Invalid, NotFound
from dgxie.handoff.bootstrap import on_installed
from dgxie.models import DhcpLease, Interface, Node
from dgxie.nodes import callbacks
from dgxie.nodes.schemas import CallbackOut
from dgxie.site import Site

ACTIONS = {"start": "started", "end": "finished"}


def node_at(session: Session, peer: str) -> Node | None:
    """The node whose reserved IP or live DHCP lease is `peer`, locked for update."""
    node = session.scalar(select(Node).where(Node.ip == peer).with_for_update(of=Node))
    if node is None:
        mac = session.scalar(select(DhcpLease.mac).where(DhcpLease.ip == peer,
                                                         DhcpLease.expires_at > datetime.now(UTC)))
        if mac is not None:
            node = session.scalar(select(Node).join(Interface).where(Interface.mac == mac).with_for_update(of=Node))
    return node


def report(sessions: sessionmaker[Session], site: Site, body: bytes, peer: str) -> CallbackOut:
    """Apply DGXIE's `action=start|end` from `peer` (one transaction); the reply."""
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    action = (form.get("action") or [""])[0]
    if action not in ACTIONS:
        raise Invalid("action: expected start or end (DGXIE's install report)")
    with session_scope(sessions) as s:
        node = node_at(s, peer)
        if node is None or node.profile is None or node.profile.template != EXTERNAL_TEMPLATE:
            raise NotFound(f"no node with an external profile at {peer}")
        if node.state not in (State.ENROLLED.value, State.INSTALLING.value):
            if action == "end" and node.state in (State.INSTALLED.value, State.BOOTSTRAPPING.value,
                                                  State.READY.value):
                return CallbackOut(state=node.state, changed=False, logged=False)  # a replay
            raise Conflict(f"{node.hostname} is {node.state}: DGXIE install reports are taken only while "
                           "enrolled or installing")
        interval = site.install.progress_interval_seconds
        message = f"DGXIE install report from {peer}: action={action}"
        result: CallbackOut | None = None
        if node.state == State.ENROLLED.value or action == "start":
            result = callbacks.apply(s, node, callbacks.Callback("started", message), interval=interval)
        if action == "end":
            result = callbacks.apply(s, node, callbacks.Callback("finished", message), interval=interval)
            result.bootstrap = on_installed(s, site, node, actor=callbacks.INSTALLER)
            result.state = node.state
        assert result is not None
        return result
