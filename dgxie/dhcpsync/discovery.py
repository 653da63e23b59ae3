"""Discovered nodes from DHCP (services layer): creating them, and the event when limits bite.

`create_discovered` turns admitted unknown MACs into `discovered` nodes `node-<mac hex>` (actor
"dhcp"), each in its own savepoint so one bad MAC is skipped alone and never takes the batch
down (issue 12: one multicast chaddr once lost the 10 legitimate MACs of its batch). It works
for at most `budget` seconds per transaction, so the database's write lock (SQLite has one) is
never held long enough to hold up the lease write-behind, and stops early when asked to.

`record_limited` writes one `dhcp.discovery_limited` event with the refusals counted since the
previous one (the service calls it at most once per interval, never per packet).
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session

from dgxie.errors import DgxieError
from dgxie.events import record
from dgxie.netboot.dhcp.discovery import DiscoveryLimits, valid_mac
from dgxie.nodes.schemas import NodeCreate
from dgxie.nodes.service import create_node
from dgxie.site import Site

log = logging.getLogger("dgxie.dhcp")


def create_discovered(session: Session, site: Site, macs: list[bytes], *, budget: float = 0.1,
                      stop: threading.Event | None = None) -> tuple[int, list[bytes]]:
    """Create each MAC as a `discovered` node (existing or invalid ones are skipped) until
    `budget` seconds have passed or `stop` is set; returns (nodes made, MACs not tried yet)."""
    made = 0
    deadline = time.monotonic() + budget
    for i, mac in enumerate(macs):
        if (stop is not None and stop.is_set()) or (i and time.monotonic() >= deadline):
            return made, macs[i:]
        if not valid_mac(len(mac), mac):
            log.info("dhcp: discovery of %s skipped: not a unicast MAC", mac.hex(":"))
            continue
        try:
            with session.begin_nested():
                create_node(session, site, NodeCreate(hostname=f"node-{mac.hex()}", mac=mac.hex(":"),
                                                      state="discovered"), actor="dhcp")
            made += 1
        except (DgxieError, ValueError) as exc:  # ValueError: pydantic's ValidationError too
            log.info("dhcp: discovery of %s skipped: %s", mac.hex(":"), getattr(exc, "detail", exc))
    return made, []


def record_limited(session: Session, refused: dict[str, int], limits: DiscoveryLimits, existing: int,
                   reserve: dict[str, int]) -> None:
    """One event: how many packets of unknown MACs were left unanswered since the last one, by
    reason (`cap`, `rate`, `reserve`), with the limits in force."""
    parts = ", ".join(f"{k}: {v}" for k, v in sorted(refused.items()))
    record(session, actor="dhcp", kind="dhcp.discovery_limited",
           reason=f"unknown MACs not answered ({parts})",
           data={"refused": refused, "max_nodes": limits.max_nodes, "rate": limits.rate,
                 "interval_seconds": limits.interval, "discovered_nodes": existing, "pool_reserve": reserve})
