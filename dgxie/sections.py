"""The configuration's sections: frozen, validated, typed (pydantic), one shape end to end.

`dgxie.config.Settings` is the whole file (loaded and validated only by the entry points); its
sections are the classes here, and the entry points hand the same section objects to the
services inside a `Site` (dgxie/site.py). Services may import this module for the types, never
`dgxie.config` (an import-linter contract): they are given configuration, they never read it.
Every model is frozen: a service cannot change what the operator configured.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hostport(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return value


class ApiConfig(_Strict):
    listen: str = "127.0.0.1:8080"
    max_body_bytes: int = Field(default=1 << 20, ge=1024)

    _check_listen = field_validator("listen")(classmethod(lambda cls, v: _hostport(v)))


class SubnetConfig(_Strict):
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


class DhcpConfig(_Strict):
    enabled: bool = False
    interfaces: list[str] = []
    mode: Literal["authoritative", "proxy"] = "authoritative"
    discovery: bool = False
    listen_port: int = 67
    subnets: list[SubnetConfig] = []


class TftpConfig(_Strict):
    enabled: bool = False
    listen: str = "0.0.0.0:69"
    root: Path | None = None  # default: <data_dir>/tftp (searched before ipxe_dir)
    ipxe_dir: Path = Path("/usr/lib/ipxe")  # Debian's `ipxe` package: undionly.kpxe, ipxe.efi, snponly.efi
    max_blksize: int = Field(default=65464, ge=512, le=65464)

    _check_listen = field_validator("listen")(classmethod(lambda cls, v: _hostport(v)))


class BootConfig(_Strict):
    discovery_image: str | None = None  # image booted by unknown/discovered nodes when dhcp.discovery is on
    script_cache_seconds: float = Field(default=2.0, ge=0, le=60)  # per-node iPXE script cache


class ProfileConfig(_Strict):
    image: str | None = None
    template: str = "ubuntu/autoinstall"
    role: str | None = None
    description: str = ""
    vars: dict[str, Any] = {}


class RoleConfig(_Strict):
    groups: list[str] = []
    bootstrap: Literal["ansible", "cloud-init", "none"] = "none"
    playbook: str | None = None
    script: str | None = None
    drain: str | None = None
    resume: str | None = None


class HandoffConfig(_Strict):
    """Role handoff (docs/handoff.md): the ansible bootstrap worker and the drain/resume hooks."""

    enabled: bool = True
    poll_seconds: float = Field(default=5.0, gt=0)
    concurrency: int = Field(default=4, ge=1, le=256)
    timeout_seconds: float = Field(default=3600.0, gt=0)
    hook_timeout_seconds: float = Field(default=300.0, gt=0)
    output_tail_bytes: int = Field(default=8192, ge=256, le=1 << 20)
    ansible_playbook: str = "ansible-playbook"
    playbook_dir: Path | None = None
    inventory_script: Path | None = None
    templates_dir: Path | None = None


def default_roles() -> dict[str, RoleConfig]:
    """DeepOps' group layout for the built-in roles (see docs/roles.md)."""
    return {
        "k8s-control": RoleConfig(groups=["kube_control_plane", "etcd"]),
        "k8s-worker": RoleConfig(groups=["kube_node"]),
        "slurm-controller": RoleConfig(groups=["slurm-master"]),
        "slurmd": RoleConfig(groups=["slurm-node"]),
        "slurm-login": RoleConfig(groups=["slurm-login"]),
    }


class SiteConfig(_Strict):
    """The site's identity and the variables every node's install config sees (docs/lifecycle.md)."""

    name: str = "dgxie"
    domain: str = "cluster.local"
    vars: dict[str, Any] = {}
    ssh_authorized_keys: list[str] = []
    timezone: str = "UTC"


class InstallConfig(_Strict):
    """Installer callbacks and the install timeout (docs/lifecycle.md)."""

    timeout_minutes: int = Field(default=90, ge=1)
    sweep_seconds: float = Field(default=60, gt=0)
    callback_max_bytes: int = Field(default=256 * 1024, ge=1024)
    progress_interval_seconds: float = Field(default=5.0, ge=0)


def _duration(v: Any) -> float | None:
    """Seconds, or a number with a unit: `90s`, `30m`, `6h`, `1d`."""
    if v is None or isinstance(v, int | float):
        return None if v is None else float(v)
    s = str(v).strip().lower()
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(s[-1:], 0)
    try:
        return float(s[:-1]) * unit if unit else float(s)
    except ValueError:
        raise ValueError(f"{v!r} is not a duration (e.g. 3600, 30m, 6h, 1d)") from None


class BmcConfig(_Strict):
    """How dgxie talks to BMCs (Redfish and IPMI); see docs/firmware.md."""

    timeout: float = Field(default=10.0, gt=0, le=300)
    retries: int = Field(default=2, ge=0, le=10)
    per_bmc: int = Field(default=4, ge=1, le=64)
    scan_concurrency: int = Field(default=100, ge=1, le=2000)
    tls_verify: bool = False
    ca_file: Path | None = None


class FirmwareConfig(_Strict):
    baselines: Path = Path("firmware")


class MirrorConfig(_Strict):
    """Keys every mirror has; `AptMirrorConfig` / `OciMirrorConfig` add their kind's keys, and the
    mirror service hands that same object to the kind (`dgxie.mirror.kind.MirrorKind`)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)
    kind: Literal["apt", "oci"]
    keep_snapshots: int = Field(default=3, ge=1)
    interval: float | None = None  # scheduled sync every N seconds (also "6h", "30m", "1d")

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, v: Any) -> float | None:
        d = _duration(v)
        if d is not None and d < 60:
            raise ValueError("interval must be at least 60 seconds")
        return d


_APT_WORD = r"^[A-Za-z0-9][A-Za-z0-9._/+-]*$"


class AptMirrorConfig(MirrorConfig):
    """Kind `apt` (docs/mirrors.md)."""

    kind: Literal["apt"]
    url: str
    suites: list[Annotated[str, Field(pattern=_APT_WORD)]] = Field(min_length=1)
    components: list[Annotated[str, Field(pattern=_APT_WORD)]] = ["main"]
    architectures: list[Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]] = ["amd64"]
    keyring: Path
    filter: list[str] = []  # package names or fnmatch patterns; their dependency closure is kept

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL ({v!r})")
        return v.rstrip("/")

    @field_validator("keyring")
    @classmethod
    def _keyring(cls, v: Path) -> Path:
        if not v.is_absolute():
            raise ValueError(f"the keyring must be an absolute path (got {str(v)!r})")
        return v

    @property
    def upstream(self) -> str:
        return self.url


# A repository name (OCI distribution spec, "name"): also what the /v2/ API accepts.
OCI_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_OCI_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9.]+)?$")


class TagRules(_Strict):
    """Which tags to mirror: `include` (any matches, `re.search`; empty = all), then `exclude`
    (none matches), then the `keep_newest` newest by image `created` time (dgxie.mirror.oci.rules)."""

    include: list[str] = []
    exclude: list[str] = []
    keep_newest: int | None = Field(default=None, ge=1)

    @field_validator("include", "exclude")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for pat in v:
            try:
                re.compile(pat)
            except re.error as exc:
                raise ValueError(f"{pat!r} is not a regular expression ({exc})") from None
        return v


class OciMirrorConfig(MirrorConfig):
    """Kind `oci` (docs/mirrors-oci.md). Example::

        - name: ngc
          kind: oci
          registry: https://nvcr.io
          username: $oauthtoken
          password_file: /etc/dgxie/ngc-key
          repositories: [nvidia/pytorch]
          tags: {include: ['^24\\.'], exclude: ['-igpu$'], keep_newest: 3}
          platforms: [linux/amd64]
    """

    kind: Literal["oci"]
    registry: str
    username: str | None = None
    password_file: Path | None = None
    repositories: list[str] = Field(min_length=1)
    tags: TagRules = TagRules()
    platforms: list[str] = []
    insecure: bool = False  # skip TLS verification (an https registry with a self-signed cert)
    ca_file: Path | None = None  # or trust this CA bundle
    timeout: float = Field(default=60.0, gt=0)
    retries: int = Field(default=4, ge=0, le=20)
    concurrency: int = Field(default=4, ge=1, le=32)  # blobs downloaded at once

    @field_validator("registry")
    @classmethod
    def _registry(cls, v: str) -> str:
        if "://" not in v:
            v = "https://" + v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise ValueError(f"{v!r} is not a registry URL like https://nvcr.io")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("repositories")
    @classmethod
    def _repos(cls, v: list[str]) -> list[str]:
        for r in v:
            if not OCI_REPOSITORY.match(r):
                raise ValueError(f"{r!r} is not a repository name like nvidia/pytorch")
        return v

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, v: list[str]) -> list[str]:
        for p in v:
            if not _OCI_PLATFORM.match(p):
                raise ValueError(f"{p!r} is not a platform like linux/amd64 or linux/arm64/v8")
        return v

    @property
    def upstream(self) -> str:
        return self.registry

    @property
    def upstream_host(self) -> str:
        """`host[:port]` of the registry, what containerd sends as `?ns=`."""
        return urlsplit(self.registry).netloc


AnyMirrorConfig = Annotated[AptMirrorConfig | OciMirrorConfig, Field(discriminator="kind")]
