"""The plain node record the inventory builders work on (pure data, no database).

`dgxie.handoff.service.node_records` builds these from the database; `ansible.py` and `slurm.py`
turn lists of them into inventories without any I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The hardware facts dgxie knows (from the BMC's Redfish Systems resource, the deploy agent's
# commissioning, or set through the API). dgxie.agent.facts.SUMMARY_KEYS is the same tuple.
FACT_KEYS = ("cpus", "sockets", "cores_per_socket", "threads_per_core", "memory_mib", "gpus", "gpu_model",
             "model", "manufacturer", "serial")


def _known(layer: Any, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    if not isinstance(layer, dict):
        return {}
    return {k: v for k, v in layer.items() if v not in (None, "", []) and (keys is None or k in keys)}


def flat_facts(facts: dict[str, Any] | None) -> dict[str, Any]:
    """A node's facts as the inventories read them, three layers, later ones winning:

    1. `facts["hardware"]`: what the BMC scan read (dgxie/firmware/service.py);
    2. `facts["commissioning"]`: what the deploy agent saw from inside the machine
       (`dgxie.agent.facts.commissioning_facts`: the FACT_KEYS at its top, only those are taken
       here; the whole parsed structure sits under its `"detail"`, which the inventories never see);
    3. the node's other facts, set through the API (an admin's value always wins).

    Empty values (None, "", []) in the first two are dropped, so a trimmed Redfish resource or a
    bundle without lspci.txt never hides a value a lower layer knows."""
    facts = dict(facts or {})
    hardware = _known(facts.pop("hardware", None))
    commissioning = _known(facts.pop("commissioning", None), FACT_KEYS)
    return hardware | commissioning | facts


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
