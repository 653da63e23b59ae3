"""The node lifecycle state machine: the only way a node's state changes.

    discovered -> enrolled -> installing -> installed -> bootstrapping -> ready
    failed from any active state; reprovision takes any enrolled-or-later node back to enrolled.

Installer callbacks (`nodes.callbacks`), the install-timeout sweep (here) and reprovision
(`nodes.reprovision`) all end in `transition()` here; the states and edges are `boot.state`.

Every transition writes one row to the events table (actor, time, from, to, why).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dgxie.boot.state import State, can_transition
from dgxie.errors import Conflict
from dgxie.events import record
from dgxie.models import Node
from dgxie.models.types import utcnow
from dgxie.nodes import credentials


def transition(session: Session, node: Node, to: State, *, actor: str, reason: str, kind: str = "state",
               data: dict[str, object] | None = None) -> None:
    """Move `node` to `to`, or raise Conflict naming the refused edge. Records one event and
    drops the node's one-time credential (`nodes.credentials`: none outlives the state it was
    made for)."""
    src = node.state
    if not can_transition(src, to):
        raise Conflict(f"{node.hostname}: cannot go from {src} to {to.value}")
    node.state = to.value
    node.state_changed_at = utcnow()
    credentials.drop(node)
    record(session, actor=actor, kind=kind, node=node, from_state=src, to_state=to.value, reason=reason,
           data=data)


# --- the install timeout ------------------------------------------------------------------------

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
