"""Reprovision: a node back to `enrolled` with a new boot token, and what runs around it.

One service function, `reprovision_node()`, is the whole sequence for both entry points (the
API route and `dgxie node reprovision`): in one transaction the before-hooks (a drain that may
refuse), the state change and its event; commit; then each after-hook in its own transaction
(BMC PXE-once + power cycle), so a failing hook never undoes the committed reprovision. What the
BMC hook did comes back with the node (`ReprovisionOut.power_cycle`: null without a BMC, `ok`
false with the failed step and error), so the API answer and the CLI say when the power cycle
failed; the node stays enrolled for its next (manual) network boot either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.boot.state import State
from dgxie.db import session_scope
from dgxie.errors import Conflict
from dgxie.events import record
from dgxie.models import Node
from dgxie.nodes.credentials import rotate_boot_token
from dgxie.nodes.lifecycle import transition
from dgxie.nodes.schemas import PxeCycleOut, ReprovisionOut
from dgxie.nodes.service import get_node, to_out
from dgxie.site import Site

ReprovisionHook = Callable[[Session, Site, Node, str], None]
"""`hook(session, site, node, actor)`: runs inside the reprovision transaction and may refuse it
by raising a DgxieError (e.g. a handoff drain that fails)."""
AfterHook = Callable[[Session, Site, Node, str], PxeCycleOut | None]
"""`hook(session, site, node, actor)`: runs once the reprovision is committed, in a fresh session
(e.g. BMC: set PXE-once and power-cycle); returns what it did to the node's BMC, or None."""


@dataclass
class ReprovisionHooks:
    before: list[ReprovisionHook] = field(default_factory=list)
    after: list[AfterHook] = field(default_factory=list)


def reset_install(node: Node) -> None:
    node.install_seen_at = None
    node.progress_logged_at = None
    node.progress_suppressed = 0


def reprovision(session: Session, site: Site, node: Node, *, actor: str,
                hooks: ReprovisionHooks | None = None) -> Node:
    """Send `node` back to `enrolled` with a new boot token (its old config URLs stop working).

    The caller commits, then runs `hooks.after` (`run_after_reprovision`). An enrolled node only
    gets a new token; a discovered node must be enrolled first.
    """
    if node.state == State.DISCOVERED:
        raise Conflict(f"{node.hostname}: is discovered, not enrolled; enroll it (dgxie node set --profile) first")
    for hook in (hooks.before if hooks else []):
        hook(session, site, node, actor)
    if node.state == State.ENROLLED:
        record(session, actor=actor, kind="reprovision", node=node, reason="reprovision: boot token rotated")
    else:
        transition(session, node, State.ENROLLED, actor=actor, reason="reprovision", kind="reprovision")
    rotate_boot_token(site.box, node)
    reset_install(node)
    return node


def run_after_reprovision(sessions: sessionmaker[Session], site: Site, hostname: str, *, actor: str,
                          hooks: ReprovisionHooks | None) -> PxeCycleOut | None:
    """Run the after-hooks, each in its own transaction (a failing hook does not undo the
    reprovision); returns the BMC result of the last hook that reported one."""
    result = None
    for hook in (hooks.after if hooks else []):
        with session_scope(sessions) as s:
            n = s.scalar(select(Node).where(Node.hostname == hostname))
            if n is not None:
                result = hook(s, site, n, actor) or result
    return result


def reprovision_node(sessions: sessionmaker[Session], site: Site, ref: str, *, actor: str,
                     hooks: ReprovisionHooks | None) -> ReprovisionOut:
    """Reprovision the node `ref` (hostname or MAC), commit, then run the after-hooks."""
    with session_scope(sessions) as s:
        out = to_out(reprovision(s, site, get_node(s, ref), actor=actor, hooks=hooks))
    cycle = run_after_reprovision(sessions, site, out.hostname, actor=actor, hooks=hooks)
    return ReprovisionOut(**out.model_dump(), power_cycle=cycle)
