"""Prometheus metrics of the boot path: decisions served by kind, TFTP transfers and bytes.

One set per process, made by the composition root and registered in the context's registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from dgxie.boot.decide import Decision


class BootMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter("dgxie_boot_decisions", "Boot decisions served (iPXE scripts) by action",
                                 ["action"], registry=registry)
        self.tftp_transfers = Counter("dgxie_tftp_transfers", "TFTP transfers by outcome (ok, error, aborted, "
                                      "refused)", ["outcome"], registry=registry)
        self.tftp_bytes = Counter("dgxie_tftp_bytes", "TFTP payload bytes acknowledged by clients", registry=registry)

    def decision(self, d: Decision) -> None:
        self.decisions.labels(d.action.value).inc()

    def tftp_done(self, filename: str, outcome: str, nbytes: int) -> None:
        self.tftp_transfers.labels(outcome).inc()
        if nbytes:
            self.tftp_bytes.inc(nbytes)
