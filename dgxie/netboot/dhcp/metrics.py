"""Prometheus view of the DHCP server, read at scrape time from its plain counters (nothing is
done per packet beyond an int increment)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dgxie.netboot.dhcp.responder import Responder


class DhcpCollector(Collector):
    """`dgxie_dhcp_packets_total{type,outcome}`, `dgxie_dhcp_leases_in_use{subnet}`,
    `dgxie_dhcp_discovery_refused_total{reason}` (cap, rate, reserve),
    `dgxie_dhcp_discovery_pending` and, given a `lag` callable (the sync service's),
    `dgxie_dhcp_lease_write_lag_seconds`: the age of the oldest lease change not yet committed;
    with `dhcp.ha`, `dgxie_dhcp_ha_partner_down` (1 while this server answers its partner's clients)."""

    def __init__(self, responder: Responder, lag: Callable[[], float] | None = None) -> None:
        self.responder = responder
        self.lag = lag

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
        gate = self.responder.gate
        refused = CounterMetricFamily("dgxie_dhcp_discovery_refused", "Packets of unknown MACs not answered "
                                      "because of the discovery cap, rate or the pool reserve", labels=["reason"])
        for reason in ("cap", "rate", "reserve"):
            refused.add_metric([reason], gate.refused.get(reason, 0))
        yield refused
        yield GaugeMetricFamily("dgxie_dhcp_discovery_pending", "Admitted unknown MACs whose discovered node "
                                "is not created yet", value=len(gate.admitted))
        if self.responder.ha is not None:
            yield GaugeMetricFamily("dgxie_dhcp_ha_partner_down", "1 while the HA partner is silent and this "
                                    "server answers its clients too", value=int(self.responder.ha.partner_down))
        if self.lag is not None:
            yield GaugeMetricFamily("dgxie_dhcp_lease_write_lag_seconds", "Age of the oldest lease change not "
                                    "yet committed to the database (0: all written)", value=self.lag())
