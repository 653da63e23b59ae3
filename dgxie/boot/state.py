"""The node lifecycle's states and its allowed edges (pure: no database).

    discovered -> enrolled -> installing -> installed -> bootstrapping -> ready
    failed from any active state; reprovision takes any enrolled-or-later node back to enrolled.

`dgxie.nodes.lifecycle.transition()` is the only code that changes a node's state, and it asks
`can_transition()` here; the boot decision (`boot.decide`) reads the same enum.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    DISCOVERED = "discovered"
    ENROLLED = "enrolled"
    INSTALLING = "installing"
    INSTALLED = "installed"
    BOOTSTRAPPING = "bootstrapping"
    READY = "ready"
    FAILED = "failed"


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
