"""What services know about the site: the configuration's sections, handed down, never read.

Services never read the configuration (ARCHITECTURE.md layering): the entry points load and
validate `dgxie.config.Settings` and `dgxie.compose` builds one `Site` from it. A `Site` holds the
very section objects the file was parsed into (`dgxie.sections`, frozen pydantic models), plus
what the entry points resolve once: the secret box, the data directory, the public URL and the
config file's path (for children that read the same config). One shape, end to end.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dgxie.bmc.base import Options as BmcOptions
from dgxie.crypto import SecretBox
from dgxie.errors import Invalid
from dgxie.sections import (
    AnyMirrorConfig,
    AptMirrorConfig,
    BmcConfig,
    BootConfig,
    FirmwareConfig,
    HandoffConfig,
    InstallConfig,
    InstanceConfig,
    ProfileConfig,
    RoleConfig,
    SiteConfig,
)


def _frozen(m: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True)
class Site:
    box: SecretBox
    data_dir: Path
    public_url: str
    config_path: str | None = None  # the config file, for children (ansible -> the inventory script)
    identity: SiteConfig = field(default_factory=SiteConfig)  # config `site:`
    vars: Mapping[str, Any] = field(default_factory=_frozen)  # config `vars:` (every node's lowest layer)
    subnets: tuple[ipaddress.IPv4Network, ...] = ()  # config `dhcp.subnets[].cidr`
    discovery: bool = False  # config `dhcp.discovery`: unknown/discovered nodes boot the discovery image
    boot: BootConfig = field(default_factory=BootConfig)
    roles: Mapping[str, RoleConfig] = field(default_factory=_frozen)
    profiles: Mapping[str, ProfileConfig] = field(default_factory=_frozen)
    install: InstallConfig = field(default_factory=InstallConfig)
    handoff: HandoffConfig = field(default_factory=HandoffConfig)
    mirrors: tuple[AnyMirrorConfig, ...] = ()
    bmc: BmcConfig = field(default_factory=BmcConfig)
    firmware: FirmwareConfig = field(default_factory=FirmwareConfig)
    instance: InstanceConfig = field(default_factory=InstanceConfig)  # who this process is (jobs, leases)

    @property
    def templates_dir(self) -> Path | None:
        """The site's template override directory (file by file over the shipped templates)."""
        return self.handoff.templates_dir

    @property
    def apt_mirrors(self) -> tuple[str, ...]:
        """Names of the configured `kind: apt` mirrors."""
        return tuple(m.name for m in self.mirrors if isinstance(m, AptMirrorConfig))

    @cached_property
    def bmc_options(self) -> BmcOptions:
        """The `bmc:` section as the BMC drivers' options (protocol code takes no config types)."""
        b = self.bmc
        return BmcOptions(timeout=b.timeout, retries=b.retries, per_bmc=b.per_bmc,
                          verify=str(b.ca_file) if b.ca_file else b.tls_verify, allow_http=b.allow_insecure_http)

    def check_role(self, role: str | None, *, where: str = "") -> None:
        """Invalid unless `role` is None or a configured role (the one check every area uses)."""
        if role is not None and role not in self.roles:
            raise Invalid(f"{where}unknown role {role!r} (known: {', '.join(sorted(self.roles))})")

    def subnet_of(self, ip: str) -> ipaddress.IPv4Network | None:
        addr = ipaddress.IPv4Address(ip)
        for net in self.subnets:
            if addr in net:
                return net
        return None
