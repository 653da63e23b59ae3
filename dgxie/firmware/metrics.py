"""Prometheus gauges of firmware compliance, computed at scrape time from the stored scans."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from dgxie.errors import DgxieError
from dgxie.firmware import compliance
from dgxie.site import Site


class FirmwareCollector(Collector):
    """`dgxie_firmware_noncompliant_components{node,status}` and `dgxie_firmware_components{status}`."""

    def __init__(self, sessions: sessionmaker[Session], site: Site) -> None:
        self.sessions, self.site = sessions, site

    def collect(self) -> Iterator[Metric]:
        per_node = GaugeMetricFamily("dgxie_firmware_noncompliant_components",
                                     "Components not at their baseline version, per node and status",
                                     labels=["node", "status"])
        totals = GaugeMetricFamily("dgxie_firmware_components", "Components by compliance status", labels=["status"])
        try:
            with self.sessions() as s:
                rows = compliance.rows(s, self.site)
        except DgxieError:  # e.g. a broken baseline file: no gauges rather than a failed scrape
            rows = []
        counts: dict[tuple[str, str], int] = {}
        for r in rows:
            if r["status"] != "compliant":
                counts[(r["node"], r["status"])] = counts.get((r["node"], r["status"]), 0) + 1
        for (node, status), n in sorted(counts.items()):
            per_node.add_metric([node, status], n)
        for status, n in compliance.summary(rows).items():
            totals.add_metric([status], n)
        yield per_node
        yield totals
