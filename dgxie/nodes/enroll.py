"""Enroll a discovered node (its MACs and facts stay) and erase a node (back to discovered).

    discovered --enroll--> enrolled        (a profile, optionally a new hostname, role, IP)
    any state  --erase---> erasing --agent wipes disks--> discovered

Both are one transaction each, through `lifecycle.transition`; bad input changes nothing. Erase
rotates the boot token (the old config URLs stop working) and leaves the wipe to the deploy agent
(`dgxie.agent`), which the node boots next (`boot.decide`: erasing -> erase). The after-hooks of
reprovision (BMC PXE-once + power cycle) run after an erase too, so a node with a BMC starts at once.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from dgxie.boot.state import State
from dgxie.db import session_scope
from dgxie.errors import Conflict
from dgxie.events import record
from dgxie.models import Node
from dgxie.nodes.credentials import rotate_boot_token
from dgxie.nodes.lifecycle import transition
from dgxie.nodes.reprovision import ReprovisionHooks, reset_install, run_after_reprovision
from dgxie.nodes.schemas import EnrollIn, NodeOut, NodeUpdate, ReprovisionOut
from dgxie.nodes.service import get_node, to_out, update_node
from dgxie.site import Site


def enroll(session: Session, site: Site, node: Node, data: EnrollIn, *, actor: str) -> Node:
    """Turn a discovered node into an enrolled one (Conflict for any other state)."""
    if node.state != State.DISCOVERED:
        raise Conflict(f"{node.hostname}: is {node.state}, not discovered; only a discovered node is enrolled "
                       "(reprovision reinstalls an enrolled one)")
    fields = {"profile": data.profile} | {k: v for k, v in (("hostname", data.hostname), ("role", data.role),
                                                              ("ip", data.ip), ("tags", data.tags)) if v is not None}
    update_node(session, site, node, NodeUpdate(**fields), actor=actor)
    if data.role is None and node.profile is not None and node.profile.role:
        node.role = node.profile.role  # as when a node is created with a profile
    transition(session, node, State.ENROLLED, actor=actor, kind="enroll",
               reason=f"enrolled with profile {data.profile}")
    rotate_boot_token(site.box, node)
    reset_install(node)
    return node


def erase(session: Session, site: Site, node: Node, *, actor: str) -> Node:
    """Mark `node` for erasing: its next network boot runs the agent, which wipes every disk."""
    if node.state == State.ERASING:
        record(session, actor=actor, kind="erase", node=node, reason="erase requested again (already erasing)")
        return node
    transition(session, node, State.ERASING, actor=actor, kind="erase",
               reason="erase: the agent wipes every disk at the next network boot")
    rotate_boot_token(site.box, node)
    reset_install(node)
    return node


def enroll_node(sessions: sessionmaker[Session], site: Site, ref: str, data: EnrollIn, *, actor: str) -> NodeOut:
    """Enroll the discovered node `ref` (hostname or MAC) in one transaction."""
    with session_scope(sessions) as s:
        return to_out(enroll(s, site, get_node(s, ref), data, actor=actor))


def erase_node(sessions: sessionmaker[Session], site: Site, ref: str, *, actor: str,
               hooks: ReprovisionHooks | None) -> ReprovisionOut:
    """Erase `ref`, commit, then run reprovision's after-hooks (PXE-once + power cycle via its BMC);
    their BMC result is `power_cycle`, as for a reprovision."""
    with session_scope(sessions) as s:
        out = to_out(erase(s, site, get_node(s, ref), actor=actor))
    cycle = run_after_reprovision(sessions, site, out.hostname, actor=actor, hooks=hooks)
    return ReprovisionOut(**out.model_dump(), power_cycle=cycle)
