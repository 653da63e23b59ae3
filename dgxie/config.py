"""Configuration: one YAML file plus `DGXIE_*` environment variables.

Read only by the entry points (`dgxie.cli`, `dgxie.app`). Every key is also
`DGXIE_<SECTION>__<KEY>` in the environment (environment wins over the file). `load()` validates
everything at once and raises `ConfigError` with one line per mistake, naming the key path, e.g.
``dhcp.subnets[0].pool: 10.0.1.5 is outside 10.0.0.0/24``.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from dgxie.errors import ConfigError

CONFIG_ENV = "DGXIE_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


def default_roles() -> dict[str, RoleConfig]:
    """DeepOps' group layout for the built-in roles (see docs/roles.md)."""
    return {
        "k8s-control": RoleConfig(groups=["kube_control_plane", "etcd"]),
        "k8s-worker": RoleConfig(groups=["kube_node"]),
        "slurm-controller": RoleConfig(groups=["slurm-master"]),
        "slurmd": RoleConfig(groups=["slurm-node"]),
        "slurm-login": RoleConfig(groups=["slurm-login"]),
    }


class MirrorConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    kind: Literal["apt", "oci"]


class Settings(BaseSettings):
    """The whole configuration. See docs/configuration.md for every key."""

    model_config = SettingsConfigDict(env_prefix="DGXIE_", env_nested_delimiter="__", extra="forbid")

    database_url: str = "sqlite:///var/dgxie.db"
    data_dir: Path = Path("var")
    public_url: str = "http://127.0.0.1:8080"
    secret_key: SecretStr | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    api: ApiConfig = ApiConfig()
    dhcp: DhcpConfig = DhcpConfig()
    tftp: TftpConfig = TftpConfig()
    boot: BootConfig = BootConfig()
    profiles: dict[str, ProfileConfig] = {}
    roles: dict[str, RoleConfig] = Field(default_factory=default_roles)
    mirrors: list[MirrorConfig] = []

    @field_validator("database_url")
    @classmethod
    def _db(cls, v: str) -> str:
        if not v.startswith(("sqlite:", "postgresql")):
            raise ValueError(f"{v.split(':')[0]!r}: only sqlite:/// and postgresql+psycopg:// are supported")
        return v

    @field_validator("public_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _cross(self) -> Settings:
        for name, role in self.roles.items():
            if not role.groups:
                raise ValueError(f"roles.{name}.groups: a role needs at least one Ansible group")
        for name, prof in self.profiles.items():
            if prof.role is not None and prof.role not in self.roles:
                raise ValueError(f"profiles.{name}.role: unknown role {prof.role!r}")
        seen: set[str] = set()
        for m in self.mirrors:
            if m.name in seen:
                raise ValueError(f"mirrors: duplicate name {m.name!r}")
            seen.add(m.name)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "function_")):
            continue
        else:
            out += ("." if out else "") + part
    return out


def format_errors(exc: ValidationError) -> str:
    """One line per mistake: `key.path: message`."""
    lines = []
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        loc = _format_loc(tuple(err["loc"]))
        # A model validator's message may already start with the sub-key it is about.
        lines.append(f"{loc}.{msg}" if loc and ":" in msg.split(" ")[0] else f"{loc}: {msg}" if loc else msg)
    return "\n".join(lines)


def load(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate the config from `path` (or `$DGXIE_CONFIG`, or defaults only)."""
    path = path or os.environ.get(CONFIG_ENV) or None
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            raw = yaml.safe_load(p.read_text())
        except OSError as exc:
            raise ConfigError(f"config {p}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"config {p}{where}: not valid YAML") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"config {p}: the top level must be a mapping")
        data = raw
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None
