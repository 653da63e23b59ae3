"""The node lifecycle's states and its allowed edges (pure: no database).

    discovered -> enrolled -> installing -> installed -> bootstrapping -> ready
    failed from any active state; reprovision takes any enrolled-or-later node back to enrolled.
    erase (any state) -> erasing -> discovered (the agent wiped the disks) or failed.

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
    ERASING = "erasing"


ALLOWED: dict[State, frozenset[State]] = {
    State.DISCOVERED: frozenset({State.ENROLLED, State.ERASING}),
    State.ENROLLED: frozenset({State.INSTALLING, State.FAILED, State.ERASING}),
    State.INSTALLING: frozenset({State.INSTALLED, State.FAILED, State.ENROLLED, State.ERASING}),
    State.INSTALLED: frozenset({State.BOOTSTRAPPING, State.READY, State.FAILED, State.ENROLLED, State.ERASING}),
    State.BOOTSTRAPPING: frozenset({State.READY, State.FAILED, State.ENROLLED, State.ERASING}),
    State.READY: frozenset({State.ENROLLED, State.ERASING}),
    State.FAILED: frozenset({State.ENROLLED, State.ERASING}),
    State.ERASING: frozenset({State.DISCOVERED, State.FAILED}),
}

INITIAL = frozenset({State.DISCOVERED, State.ENROLLED})


def can_transition(src: str, dst: str) -> bool:
    """Pure check of one edge of the state machine."""
    try:
        return State(dst) in ALLOWED[State(src)]
    except ValueError:
        return False
