"""What services need to know about the site, built from the config by the entry points.

Services never read the configuration themselves (ARCHITECTURE.md layering): `dgxie.app` and
`dgxie.cli` build one `Site` from `Settings` and pass it down.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dgxie.bmc.base import Options as BmcOptions
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
class HandoffSpec:
    """Role handoff settings (config `handoff:`); see dgxie/handoff and docs/handoff.md."""

    enabled: bool = True
    poll_seconds: float = 5.0
    concurrency: int = 4
    timeout_seconds: float = 3600.0
    hook_timeout_seconds: float = 300.0
    output_tail_bytes: int = 8192
    ansible_playbook: str = "ansible-playbook"
    playbook_dir: Path | None = None
    inventory_script: Path | None = None
    templates_dir: Path | None = None
    config_path: str | None = None


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
class MirrorSpec:
    """A mirror declared in the config: kind-specific options already validated (config.py)."""

    name: str
    kind: str
    options: dict[str, Any]
    keep_snapshots: int = 3
    interval: float | None = None  # seconds between scheduled syncs; None: only on demand


@dataclass(frozen=True)
class InstallSpec:
    """Install configs and callbacks: the variable layers above profile/node, mirrors, timeouts."""

    global_vars: dict[str, Any] = field(default_factory=dict)
    site_name: str = "dgxie"
    domain: str = "cluster.local"
    site_vars: dict[str, Any] = field(default_factory=dict)
    ssh_authorized_keys: tuple[str, ...] = ()
    timezone: str = "UTC"
    apt_mirrors: tuple[str, ...] = ()  # names of the configured `kind: apt` mirrors
    timeout_minutes: int = 90
    sweep_seconds: float = 60.0
    callback_max_bytes: int = 256 * 1024
    progress_interval_seconds: float = 5.0
    templates_dir: Path | None = None  # None: the templates/ shipped beside the package


@dataclass(frozen=True)
class Site:
    box: SecretBox
    data_dir: Path
    public_url: str
    subnets: tuple[ipaddress.IPv4Network, ...] = ()
    roles: dict[str, RoleSpec] = field(default_factory=dict)
    profiles: tuple[ProfileSpec, ...] = ()
    install: InstallSpec = field(default_factory=InstallSpec)
    handoff: HandoffSpec = field(default_factory=HandoffSpec)
    mirrors: tuple[MirrorSpec, ...] = ()
    bmc: BmcOptions = field(default_factory=BmcOptions)
    bmc_scan_concurrency: int = 100
    firmware_dir: Path = Path("firmware")
    discovery: bool = False  # dhcp.discovery: unknown/discovered nodes boot the discovery image
    discovery_image: str | None = None

    def subnet_of(self, ip: str) -> ipaddress.IPv4Network | None:
        addr = ipaddress.IPv4Address(ip)
        for net in self.subnets:
            if addr in net:
                return net
        return None
