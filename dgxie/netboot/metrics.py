"""Prometheus metrics of the boot path: decisions served by kind, TFTP transfers and bytes, and
storm control (bulk power waves; big downloads throttled with 503 + Retry-After or TFTP held off).

One set per process, made by the composition root and registered in the context's registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from dgxie.boot.decide import Decision


class BootMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter("dgxie_boot_decisions", "Boot decisions served (iPXE scripts) by action",
                                 ["action"], registry=registry)
        self.tftp_transfers = Counter("dgxie_tftp_transfers", "TFTP transfers by outcome (ok, error, aborted, "
                                      "refused)", ["outcome"], registry=registry)
        self.tftp_bytes = Counter("dgxie_tftp_bytes", "TFTP payload bytes acknowledged by clients", registry=registry)

        self.power_waves = Counter("dgxie_power_waves", "Bulk power waves started", registry=registry)
        self.power_nodes = Counter("dgxie_power_nodes", "Nodes of bulk power jobs by outcome (done, requested, "
                                   "failed, skipped)", ["outcome"], registry=registry)
        self.throttled = Counter("dgxie_download_throttled", "Big downloads held back by the concurrency limit: "
                                 "HTTP answered 503 + Retry-After, TFTP read requests left unanswered", ["proto"],
                                 registry=registry)
        self.downloads = Counter("dgxie_download_admitted", "Big downloads admitted under the concurrency limit",
                                 ["proto"], registry=registry)

        self.in_flight = Gauge("dgxie_downloads_in_flight", "Big HTTP downloads being sent now (the gate's count)",
                               registry=registry)

    def http_throttled(self) -> None:
        self.throttled.labels("http").inc()

    def http_admitted(self) -> None:
        self.downloads.labels("http").inc()

    def tftp_held(self) -> None:
        self.throttled.labels("tftp").inc()

    def power_wave(self) -> None:
        self.power_waves.inc()

    def power_node(self, outcome: str) -> None:
        self.power_nodes.labels(outcome).inc()

    def decision(self, d: Decision) -> None:
        self.decisions.labels(d.action.value).inc()

    def tftp_done(self, filename: str, outcome: str, nbytes: int) -> None:
        self.tftp_transfers.labels(outcome).inc()
        if nbytes:
            self.tftp_bytes.inc(nbytes)
