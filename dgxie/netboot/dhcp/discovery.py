"""Who may be discovered (pure): MAC validity, a cap on discovered nodes and a rate of new ones.

With discovery on, an unknown MAC gets a pool address and becomes a `discovered` node. Without
limits a flood of forged DISCOVERs (the chaddr of RFC 2131 section 2 is whatever the sender
writes) creates a node per packet and empties the pool (issue 12: 3,000 forged DISCOVERs made
2,920 nodes). So:

- `valid_mac()`: only a 6-byte Ethernet unicast chaddr is a client; a multicast, broadcast or
  all-zero chaddr, or another length, is a forged or broken packet, dropped one by one.
- `DiscoveryGate.admit()`: an unknown MAC is admitted (answered and queued for creation) only
  while discovered nodes (in the database plus admitted ones not created yet) are fewer than
  `max_nodes`, and only if the token bucket of `rate` new MACs per `interval` seconds has a token.
  A MAC once admitted stays admitted (its REQUEST after the DISCOVER, its retries), so a
  client is never cut off halfway through. Refusals are counted by reason (`cap`, `rate`, and
  `reserve` for the pool reserve, counted here by the responder) for the metric and the event.

Everything runs on the event loop thread; the service drains `pending` and reports refusals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

ADMIT_HOLD = 300.0  # seconds an admitted MAC counts against the cap before its node must exist


def valid_mac(hlen: int, mac: bytes) -> bool:
    """An Ethernet unicast address: 6 bytes, not multicast/broadcast (I/G bit), not all zero."""
    return hlen == 6 and len(mac) == 6 and not mac[0] & 1 and mac != b"\x00" * 6


class _HasState(Protocol):
    @property
    def state(self) -> str: ...


@dataclass(frozen=True)
class DiscoveryLimits:
    """`max_nodes` discovered nodes at most; `rate` new ones per `interval` seconds at most."""

    max_nodes: int = 1000
    rate: int = 100
    interval: float = 60.0


@dataclass
class DiscoveryGate:
    limits: DiscoveryLimits = field(default_factory=DiscoveryLimits)
    existing: int = 0  # discovered nodes in the reservation map
    admitted: dict[bytes, float] = field(default_factory=dict)  # admitted, node not seen yet
    pending: dict[bytes, None] = field(default_factory=dict)  # admitted, node to create
    refused: Counter[str] = field(default_factory=Counter)  # since start (the metric)
    unreported: Counter[str] = field(default_factory=Counter)  # since the last report (the event)
    _tokens: float = -1.0
    _stamp: float = 0.0

    def admit(self, mac: bytes, now: float) -> str | None:
        """None if `mac` (unknown to the reservation map) may be answered, else the reason."""
        if mac in self.admitted:
            return None
        lim = self.limits
        if self.existing + len(self.admitted) >= lim.max_nodes:
            return self.refuse("cap")
        if self._tokens < 0:
            self._tokens, self._stamp = float(lim.rate), now
        elif now > self._stamp:
            self._tokens = min(float(lim.rate), self._tokens + (now - self._stamp) * lim.rate / lim.interval)
            self._stamp = now
        if self._tokens < 1.0:
            return self.refuse("rate")
        self._tokens -= 1.0
        self.admitted[mac] = now
        self.pending[mac] = None
        return None

    def refuse(self, reason: str) -> str:
        self.refused[reason] += 1
        self.unreported[reason] += 1
        return reason

    def take_pending(self, limit: int) -> list[bytes]:
        """Up to `limit` admitted MACs to create, oldest first (removed from the queue)."""
        out: list[bytes] = []
        for mac in self.pending:
            if len(out) >= limit:
                break
            out.append(mac)
        for mac in out:
            del self.pending[mac]
        return out

    def requeue(self, macs: list[bytes]) -> None:
        """A creation batch failed: queue its MACs again (those still admitted)."""
        for mac in macs:
            if mac in self.admitted:
                self.pending[mac] = None

    def reservations_changed(self, reservations: Mapping[bytes, _HasState], now: float) -> None:
        """The reservation map was reloaded: count discovered nodes, forget admitted MACs that are
        now nodes, and those admitted longer than ADMIT_HOLD ago whose node never appeared."""
        self.existing = sum(1 for r in reservations.values() if r.state == "discovered")
        self.admitted = {m: t for m, t in self.admitted.items()
                         if m not in reservations and (now - t < ADMIT_HOLD or m in self.pending)}

    def take_report(self) -> dict[str, int]:
        """Refusals since the last report, by reason (and reset)."""
        out = dict(self.unreported)
        self.unreported.clear()
        return out
