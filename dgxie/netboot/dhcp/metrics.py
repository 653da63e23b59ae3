"""Prometheus view of the DHCP server, read at scrape time from its plain counters (nothing is
done per packet beyond an int increment)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dgxie.netboot.dhcp.responder import Responder


class DhcpCollector(Collector):
    """`dgxie_dhcp_packets_total{type,outcome}` and `dgxie_dhcp_leases_in_use{subnet}`."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder

    def collect(self) -> Iterator[Metric]:
        packets = CounterMetricFamily("dgxie_dhcp_packets", "DHCP packets by message type and outcome",
                                      labels=["type", "outcome"])
        for (kind, outcome), n in sorted(dict(self.responder.counts).items()):
            packets.add_metric([kind, outcome], n)
        yield packets
        leases = GaugeMetricFamily("dgxie_dhcp_leases_in_use", "Bound, unexpired DHCP leases", labels=["subnet"])
        for subnet, n in sorted(self.responder.table.in_use(time.time()).items()):
            leases.add_metric([subnet], n)
        yield leases
