"""The plain node record the inventory builders work on (pure data, no database).

`dgxie.handoff.service.node_records` builds these from the database; `ansible.py` and `slurm.py`
turn lists of them into inventories without any I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The hardware facts dgxie knows (filled from Redfish Systems resources or set through the API).
FACT_KEYS = ("cpus", "sockets", "cores_per_socket", "threads_per_core", "memory_mib", "gpus", "gpu_model",
             "model", "manufacturer", "serial")


def flat_facts(facts: dict[str, Any] | None) -> dict[str, Any]:
    """A node's facts with what the BMC scan read (`facts["hardware"]`, see dgxie/firmware/service.py)
    underneath what was set through the API (an admin's value wins); empty values the BMC
    reported (a trimmed Redfish resource) are dropped."""
    facts = dict(facts or {})
    hardware = facts.pop("hardware", None)
    base = {k: v for k, v in hardware.items() if v not in (None, "", [])} if isinstance(hardware, dict) else {}
    return base | facts


@dataclass(frozen=True)
class NodeRecord:
    hostname: str
    ip: str | None
    role: str | None
    state: str
    groups: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)

    def fact_int(self, key: str) -> int | None:
        """A numeric fact as a positive int, or None when missing or not a whole number >= 0."""
        value = self.facts.get(key)
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        return value if isinstance(value, int) and value >= 0 else None
