"""The node lifecycle state machine: the only way a node's state changes.

    discovered -> enrolled -> installing -> installed -> bootstrapping -> ready
    failed from any active state; reprovision takes any enrolled-or-later node back to enrolled.

Installer callbacks (`nodes.callbacks`), the install-timeout sweep and reprovision all end in
`transition()` here.

Every transition writes one row to the events table (actor, time, from, to, why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.boot.state import State, can_transition
from dgxie.crypto import new_boot_token
from dgxie.db import session_scope
from dgxie.errors import Conflict
from dgxie.events import record
from dgxie.models import Node
from dgxie.models.types import utcnow
from dgxie.site import Site


def transition(session: Session, node: Node, to: State, *, actor: str, reason: str, kind: str = "state",
               data: dict[str, object] | None = None) -> None:
    """Move `node` to `to`, or raise Conflict naming the refused edge. Records one event."""
    src = node.state
    if not can_transition(src, to):
        raise Conflict(f"{node.hostname}: cannot go from {src} to {to.value}")
    node.state = to.value
    node.state_changed_at = utcnow()
    record(session, actor=actor, kind=kind, node=node, from_state=src, to_state=to.value, reason=reason,
           data=data)


# --- reprovision and the install timeout (issue 4) ---------------------------------------------

ReprovisionHook = Callable[[Session, Site, Node, str], None]
"""`hook(session, site, node, actor)`. Before-hooks run inside the reprovision transaction and may
refuse it by raising a DgxieError (e.g. a handoff drain that fails); after-hooks run once it is
committed, in a fresh session (e.g. BMC: set PXE-once and power-cycle)."""


@dataclass
class ReprovisionHooks:
    before: list[ReprovisionHook] = field(default_factory=list)
    after: list[ReprovisionHook] = field(default_factory=list)


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
    node.boot_token = new_boot_token()
    reset_install(node)
    return node


def run_after_reprovision(sessions: sessionmaker[Session], site: Site, hostname: str, *, actor: str,
                          hooks: ReprovisionHooks | None) -> None:
    """Run the after-hooks, each in its own transaction (a failing hook does not undo the reprovision)."""
    for hook in (hooks.after if hooks else []):
        with session_scope(sessions) as s:
            n = s.scalar(select(Node).where(Node.hostname == hostname))
            if n is not None:
                hook(s, site, n, actor)


def sweep_install_timeouts(session: Session, *, timeout: timedelta, now: datetime | None = None) -> list[str]:
    """Mark `failed` every installing node silent for longer than `timeout`; return their hostnames.

    Silence is measured from the last installer contact (a callback or a config fetch), or from
    when the node entered `installing` if it never called.
    """
    now = now or utcnow()
    cutoff = now - timeout
    last = func.coalesce(Node.install_seen_at, Node.state_changed_at)
    q = select(Node).where(Node.state == State.INSTALLING.value, last < cutoff).order_by(Node.id)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(of=Node, skip_locked=True)
    failed = []
    for node in session.scalars(q).unique():
        seen = node.install_seen_at or node.state_changed_at
        minutes = int((now - seen).total_seconds() // 60)
        transition(session, node, State.FAILED, actor="dgxie:timeout", kind="install.timeout",
                   reason=f"install timed out: no installer contact for {minutes} min "
                          f"(limit {int(timeout.total_seconds() // 60)} min)")
        failed.append(node.hostname)
    return failed
