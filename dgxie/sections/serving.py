"""Sections of what dgxie serves and whom it talks to: the API, DHCP, TFTP, boot, BMCs, firmware."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dgxie.sections.common import Strict, hostport

# Database connections kept beside the admitted requests' own: background services (install sweep,
# mirror scheduler, handoff worker, DHCP sync), the boot fast path's lookups (asyncio's default
# executor: up to 6 threads on 2 cores) and /healthz. See docs/configuration.md, "Concurrency".
RESERVED_CONNECTIONS = 10
# Threads of the node reads (`api.readers`), each keeping a connection between reads.
NODE_READERS = 2


class ApiConfig(Strict):
    """The HTTP server and its worker model (docs/configuration.md, "Concurrency").

    One process, one event loop; synchronous handlers run in `threads` AnyIO worker threads.
    At most `max_inflight` requests do database work at once (one connection each); up to `queue`
    more wait at most `queue_wait` seconds for a slot; beyond that a request is refused at once
    with 503 and a `Retry-After` of `retry_after` seconds (up to `retry_after_max` while refusals
    outnumber answers). The connection pool is sized from these
    (`pool_size`), so an admitted request never waits long for a connection (`pool_timeout`).
    """

    listen: str = "127.0.0.1:8080"
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    threads: int = Field(default=40, ge=4, le=1000)
    max_inflight: int = Field(default=8, ge=1, le=500)
    queue: int = Field(default=256, ge=0, le=100_000)
    queue_wait: float = Field(default=0.5, gt=0, le=60)
    retry_after: int = Field(default=2, ge=1, le=3600)
    retry_after_max: int = Field(default=30, ge=1, le=3600)
    pool_timeout: float = Field(default=5.0, gt=0, le=300)

    _check_listen = field_validator("listen")(classmethod(lambda cls, v: hostport(v)))

    @model_validator(mode="after")
    def _threads_cover_inflight(self) -> ApiConfig:
        if self.max_inflight > self.threads - 2:
            raise ValueError(f"max_inflight ({self.max_inflight}) must leave 2 of the {self.threads} threads "
                             "free (for /healthz and the boot paths): raise threads or lower max_inflight")
        return self

    @property
    def pool_size(self) -> int:
        """Connections in the pool: one per admitted request, one for the enrolment batcher's
        writer (its waiters give their slots back), one kept by each node-read thread
        (`NODE_READERS`), plus RESERVED_CONNECTIONS."""
        return self.max_inflight + 1 + NODE_READERS + RESERVED_CONNECTIONS


class SubnetConfig(Strict):
    cidr: ipaddress.IPv4Network
    pool: str | None = None
    routers: list[ipaddress.IPv4Address] = []
    dns: list[ipaddress.IPv4Address] = []
    domain: str | None = None
    lease_seconds: int = Field(default=3600, ge=60)

    @field_validator("cidr", mode="before")
    @classmethod
    def _cidr(cls, v: Any) -> Any:
        try:
            return ipaddress.IPv4Network(str(v), strict=True)
        except ValueError as exc:
            raise ValueError(f"{v!r} is not a network address in CIDR form ({exc})") from None

    def pool_range(self) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None:
        if self.pool is None:
            return None
        lo, _, hi = self.pool.partition("-")
        return ipaddress.IPv4Address(lo.strip()), ipaddress.IPv4Address(hi.strip())

    @model_validator(mode="after")
    def _pool_inside(self) -> SubnetConfig:
        if self.pool is not None:
            lo_s, sep, hi_s = self.pool.partition("-")
            if not sep:
                raise ValueError(f"pool: {self.pool!r} is not FIRST-LAST")
            for part in (lo_s.strip(), hi_s.strip()):
                try:
                    addr = ipaddress.IPv4Address(part)
                except ValueError:
                    raise ValueError(f"pool: {part!r} is not an IPv4 address") from None
                if addr not in self.cidr:
                    raise ValueError(f"pool: {addr} is outside {self.cidr}")
            lo, hi = ipaddress.IPv4Address(lo_s.strip()), ipaddress.IPv4Address(hi_s.strip())
            if lo > hi:
                raise ValueError(f"pool: {lo} comes after {hi}")
        for r in self.routers:
            if r not in self.cidr:
                raise ValueError(f"routers: {r} is outside {self.cidr}")
        return self


class HaConfig(Strict):
    """Two DHCP servers on one segment (docs/dhcp.md, "Two servers on one segment"): this server's
    name and its partner's; the name that sorts first is server 0 (lower half of every pool)."""

    mode: Literal["load-balancing"] = "load-balancing"
    this: str = Field(min_length=1, max_length=63)
    partner: str = Field(min_length=1, max_length=63)
    heartbeat_seconds: float = Field(default=1.0, gt=0, le=5)
    takeover_seconds: float = Field(default=5.0, ge=2, le=9)  # the partner silent this long: serve its clients

    @model_validator(mode="after")
    def _distinct(self) -> HaConfig:
        if self.this == self.partner:
            raise ValueError("this and partner must be different names")
        if self.heartbeat_seconds * 2 > self.takeover_seconds:
            raise ValueError("takeover_seconds must be at least twice heartbeat_seconds")
        return self

    @property
    def index(self) -> int:
        """0 or 1: this server's part of the pools and of the clients."""
        return 0 if self.this < self.partner else 1


class DhcpConfig(Strict):
    enabled: bool = False
    interfaces: list[str] = []
    mode: Literal["authoritative", "proxy"] = "authoritative"
    discovery: bool = False
    # discovery limits (docs/dhcp.md "Discovery"): at most this many `discovered` nodes at once,
    # and at most discovery_rate new ones per discovery_interval seconds (a token bucket)
    discovery_max_nodes: int = Field(default=1000, ge=0)
    discovery_rate: int = Field(default=100, ge=1)
    discovery_interval: float = Field(default=60.0, gt=0, le=86400)
    # pool addresses of each subnet kept for enrolled nodes: "10%" of the pool, or a count
    pool_reserve: str = "10%"
    listen_port: int = 67
    subnets: list[SubnetConfig] = []
    ha: HaConfig | None = None  # two servers on one segment (load balancing, takeover)

    @field_validator("pool_reserve", mode="before")
    @classmethod
    def _reserve(cls, v: Any) -> str:
        text = str(v).strip()
        number = text[:-1].strip() if text.endswith("%") else text
        if not number.isdigit() or (text.endswith("%") and int(number) > 100):
            raise ValueError(f"{v!r} is neither a percentage (0%-100%) nor a number of addresses")
        return text

    def reserve_of(self, pool_size: int) -> int:
        """The number of addresses kept for enrolled nodes in a pool of `pool_size` (rounded up)."""
        text = self.pool_reserve
        if text.endswith("%"):
            return min(pool_size, -(-pool_size * int(text[:-1].strip()) // 100))
        return min(pool_size, int(text))


class TftpConfig(Strict):
    enabled: bool = False
    listen: str = "0.0.0.0:69"
    root: Path | None = None  # default: <data_dir>/tftp (searched before ipxe_dir)
    ipxe_dir: Path = Path("/usr/lib/ipxe")  # Debian's `ipxe` package: undionly.kpxe, ipxe.efi, snponly.efi
    max_blksize: int = Field(default=65464, ge=512, le=65464)
    # Transfers in flight at once (each holds a socket and the file open); past it a new read
    # request is left unanswered and the client repeats it (docs/netboot.md, "Download limit").
    # 0 (the default): none. A PXE ROM gives up after ~30 s of silence, so a cap under the number of
    # nodes booting at once fails the rest: 256 failed 496 of 1,000 nodes in the storm bench.
    max_transfers: int = Field(default=0, ge=0, le=100_000)

    _check_listen = field_validator("listen")(classmethod(lambda cls, v: hostport(v)))


class BootConfig(Strict):
    discovery_image: str | None = None  # image booted by unknown/discovered nodes when dhcp.discovery is on
    agent_image: str = "agent"  # the deploy agent (dgxie agent build): commissions, deploys, erases
    agent_facts_max_bytes: int = Field(default=8 << 20, ge=1 << 16, le=1 << 30)
    script_cache_seconds: float = Field(default=2.0, ge=0, le=60)  # per-node iPXE script cache
    # Threads for the boot fast path's database work (install configs, iPXE script misses, image
    # lookups). Few: more threads only contend for the GIL (bench/RESULTS.md, "boot path").
    db_threads: int = Field(default=2, ge=1, le=64)
    # Big image files (kernels, initrds, root file systems) sent at once over HTTP; past it a GET is
    # answered 503 + Retry-After: download_retry_after + 0..download_retry_jitter seconds (docs/netboot.md). 0: none.
    max_downloads: int = Field(default=64, ge=0, le=100_000)
    download_min_bytes: int = Field(default=1 << 20, ge=0)  # smaller files are never counted nor held back
    download_retry_after: int = Field(default=2, ge=1, le=300)
    download_retry_jitter: int = Field(default=3, ge=0, le=300)
    # Sources allowed to fetch any node's install config and bootstrap (DHCP relays that proxy
    # HTTP, a NAT in front of a rack): by default only a node's own address may (docs/security.md).
    trusted_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(default_factory=list)


class BmcConfig(Strict):
    """How dgxie talks to BMCs (Redfish and IPMI); see docs/firmware.md."""

    timeout: float = Field(default=10.0, gt=0, le=300)
    retries: int = Field(default=2, ge=0, le=10)
    per_bmc: int = Field(default=4, ge=1, le=64)
    scan_concurrency: int = Field(default=100, ge=1, le=2000)
    tls_verify: bool = True  # verify BMC certificates (system CAs, or ca_file); false only per site, explicitly
    ca_file: Path | None = None
    # Plain http:// Redfish sends the BMC's credentials in clear (HTTP basic, the session body):
    # refused when a URL is set and when a driver connects, unless the site allows it here.
    # ipmi:// (RMCP+ lanplus, the password never on the wire) is not affected.
    allow_insecure_http: bool = False


class FirmwareConfig(Strict):
    # A site folder of baseline files over the shipped ones, file by file (dgxie.firmware.baseline.load_site);
    # None: the shipped baselines only.
    baselines: Path | None = None
