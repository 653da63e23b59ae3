"""Discovered nodes from DHCP (services layer): creating them, and the event when limits bite.

`create_discovered` turns admitted unknown MACs into `discovered` nodes `node-<mac hex>` (actor
"dhcp") through `nodes.bulk`, which checks a whole batch first, so one bad MAC is skipped alone
and never takes the batch down (issue 12: one multicast chaddr once lost the 10 legitimate MACs
of its batch). It works for at most `budget` seconds per transaction, so the database's write lock (SQLite has one) is
never held long enough to hold up the lease write-behind, and stops early when asked to.

`record_limited` writes one `dhcp.discovery_limited` event with the refusals counted since the
previous one (the service calls it at most once per interval, never per packet).
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session

from dgxie.events import record
from dgxie.netboot.dhcp.discovery import DiscoveryLimits, valid_mac
from dgxie.nodes.bulk import Row, create_nodes, problems
from dgxie.nodes.schemas import NodeCreate
from dgxie.site import Site

log = logging.getLogger("dgxie.dhcp")
BATCH = 100  # MACs checked and inserted together (~20 ms on SQLite)


def create_discovered(session: Session, site: Site, macs: list[bytes], *, budget: float = 0.1,
                      stop: threading.Event | None = None) -> tuple[int, list[bytes]]:
    """Create each MAC as a `discovered` node (existing or invalid ones are skipped, each with one
    log line) in batches of `BATCH` (`nodes.bulk`: a few queries and one insert per batch) until
    `budget` seconds have passed or `stop` is set; returns (nodes made, MACs not tried yet)."""
    made = 0
    deadline = time.monotonic() + budget
    i = 0
    while i < len(macs):
        if (stop is not None and stop.is_set()) or (i and time.monotonic() >= deadline):
            return made, macs[i:]
        batch, i = macs[i:i + BATCH], i + BATCH
        rows = []
        for mac in batch:
            if not valid_mac(len(mac), mac):
                log.info("dhcp: discovery of %s skipped: not a unicast MAC", mac.hex(":"))
                continue
            try:
                rows.append(Row(mac.hex(":"), NodeCreate(hostname=f"node-{mac.hex()}", mac=mac.hex(":"),
                                                         state="discovered")))
            except ValueError as exc:  # pydantic's ValidationError
                log.info("dhcp: discovery of %s skipped: %s", mac.hex(":"), exc)
        refused = {id(p.row): p for p in problems(session, site, rows)}
        for p in refused.values():
            log.info("dhcp: discovery of %s skipped: %s", p.row.where, p.detail)
        good = [r for r in rows if id(r) not in refused]
        if good:
            create_nodes(session, site, good, actor="dhcp", checked=True)
            made += len(good)
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
