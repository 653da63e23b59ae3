"""Prometheus gauges of firmware compliance, computed from the stored scans.

Holding every node's inventory against its baseline reads every node and scan (about a second at
20,000 nodes): a scrape reuses the last computation while nothing it reads changed (the node
change signal, the newest scan, the baseline files), and while they do change (a discovery storm,
a scan of a rack) recomputes only once `SHARE` times its last cost has passed since then (at most
`REFRESH` s): the gauges then cost at most a tenth of a core however big the site, and are at most
that old (milliseconds on a small site, ~10 s at 20,000 nodes). Before this a scrape every 0.5 s
took half the server's CPU in a discovery storm.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.errors import DgxieError
from dgxie.firmware import baseline, compliance
from dgxie.models import FirmwareScan
from dgxie.nodes.generation import generation
from dgxie.site import Site

SHARE = 10  # wait this many times the last computation's cost before the next one
REFRESH = 60.0  # seconds: the oldest the gauges may be while their inputs keep changing


class FirmwareCollector(Collector):
    """`dgxie_firmware_noncompliant_components{node,status}` and `dgxie_firmware_components{status}`."""

    def __init__(self, sessions: sessionmaker[Session], site: Site, refresh: float = REFRESH) -> None:
        self.sessions, self.site, self.refresh = sessions, site, refresh
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._at = self._cost = 0.0
        self._rows: list[dict[str, Any]] = []
        self.computed = 0  # how many scrapes recomputed (tests, bench)
        self._counted: list[dict[str, Any]] | None = None
        self._counts: tuple[list[tuple[tuple[str, str], int]], list[tuple[str, int]]] = ([], [])

    def _inputs(self, s: Session) -> tuple[Any, ...]:
        scans = s.execute(select(func.max(FirmwareScan.id), func.count(FirmwareScan.id),
                                 func.max(FirmwareScan.finished_at))).one()
        try:
            files: tuple[Any, ...] = tuple((str(f), f.stat().st_mtime_ns)
                                           for f in baseline.site_files(self.site.firmware.baselines))
        except (DgxieError, OSError):  # no baseline folder (yet): read again at every refresh
            files = ("unreadable", time.monotonic_ns())
        return generation(s), tuple(scans), files

    def current_rows(self) -> list[dict[str, Any]]:
        """The compliance rows, recomputed only as the module docstring says."""
        with self._lock:  # one scrape computes; a concurrent one waits for its answer
            with self.sessions() as s:
                key = self._inputs(s)
                started = time.monotonic()
                fresh = started - self._at < min(self._cost * SHARE, self.refresh)
                if key == self._key or (self._key is not None and fresh):
                    return self._rows
                try:
                    rows = compliance.rows(s, self.site)
                except DgxieError:  # e.g. a broken baseline file: no gauges rather than a failed scrape
                    rows = []
            self._key, self._rows = key, rows
            self._at = time.monotonic()
            self._cost = self._at - started
            self.computed += 1
            return rows

    def collect(self) -> Iterator[Metric]:
        per_node = GaugeMetricFamily("dgxie_firmware_noncompliant_components",
                                     "Components at another version than the baseline (outdated, ahead, missing), "
                                     "per node", labels=["node", "status"])
        totals = GaugeMetricFamily("dgxie_firmware_components", "Components by compliance status", labels=["status"])
        rows = self.current_rows()
        if self._counted is not rows:
            self._counts = samples(rows)
            self._counted = rows
        for (node, status), n in self._counts[0]:
            per_node.add_metric([node, status], n)
        for status, n in self._counts[1]:
            totals.add_metric([status], n)
        yield per_node
        yield totals


def samples(rows: list[dict[str, Any]]) -> tuple[list[tuple[tuple[str, str], int]], list[tuple[str, int]]]:
    """The per-node samples (outdated, ahead, missing: not `unknown`, which on a site without scans
    would be one series per node; it is in the totals) and the totals by status."""
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        if r["status"] not in ("compliant", "unknown"):
            counts[(r["node"], r["status"])] = counts.get((r["node"], r["status"]), 0) + 1
    return sorted(counts.items()), list(compliance.summary(rows).items())
