"""What services need to know about the site, built from the config by the entry points.

Services never read the configuration themselves (ARCHITECTURE.md layering): `dgxie.app` and
`dgxie.cli` build one `Site` from `Settings` and pass it down.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dgxie.crypto import SecretBox


@dataclass(frozen=True)
class RoleSpec:
    name: str
    groups: tuple[str, ...]
    bootstrap: str = "none"
    playbook: str | None = None
    script: str | None = None
    drain: str | None = None
    resume: str | None = None


@dataclass(frozen=True)
class ProfileSpec:
    """A profile declared in the config file; synced into the database at start."""

    name: str
    image: str | None
    template: str
    role: str | None
    description: str
    vars: dict[str, Any]


@dataclass(frozen=True)
class Site:
    box: SecretBox
    data_dir: Path
    public_url: str
    subnets: tuple[ipaddress.IPv4Network, ...] = ()
    roles: dict[str, RoleSpec] = field(default_factory=dict)
    profiles: tuple[ProfileSpec, ...] = ()
    discovery: bool = False  # dhcp.discovery: unknown/discovered nodes boot the discovery image
    discovery_image: str | None = None

    def subnet_of(self, ip: str) -> ipaddress.IPv4Network | None:
        addr = ipaddress.IPv4Address(ip)
        for net in self.subnets:
            if addr in net:
                return net
        return None
