"""The node lifecycle state machine: the only way a node's state changes.

    discovered -> enrolled -> installing -> installed -> bootstrapping -> ready
    failed from any active state; reprovision takes any enrolled-or-later node back to enrolled.

Every transition writes one row to the events table (actor, time, from, to, why).
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.orm import Session

from dgxie.errors import Conflict
from dgxie.models import Node
from dgxie.models.types import utcnow
from dgxie.nodes.events import record


class State(StrEnum):
    DISCOVERED = "discovered"
    ENROLLED = "enrolled"
    INSTALLING = "installing"
    INSTALLED = "installed"
    BOOTSTRAPPING = "bootstrapping"
    READY = "ready"
    FAILED = "failed"


ACTIVE = frozenset({State.ENROLLED, State.INSTALLING, State.INSTALLED, State.BOOTSTRAPPING})

ALLOWED: dict[State, frozenset[State]] = {
    State.DISCOVERED: frozenset({State.ENROLLED}),
    State.ENROLLED: frozenset({State.INSTALLING, State.FAILED}),
    State.INSTALLING: frozenset({State.INSTALLED, State.FAILED, State.ENROLLED}),
    State.INSTALLED: frozenset({State.BOOTSTRAPPING, State.READY, State.FAILED, State.ENROLLED}),
    State.BOOTSTRAPPING: frozenset({State.READY, State.FAILED, State.ENROLLED}),
    State.READY: frozenset({State.ENROLLED}),
    State.FAILED: frozenset({State.ENROLLED}),
}

INITIAL = frozenset({State.DISCOVERED, State.ENROLLED})


def can_transition(src: str, dst: str) -> bool:
    """Pure check of one edge of the state machine."""
    try:
        return State(dst) in ALLOWED[State(src)]
    except ValueError:
        return False


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
