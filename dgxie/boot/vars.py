"""Install-config variables: layering with provenance (pure).

Layers, lowest first; a key set in a later layer wins (shallow, per top-level key, so a profile's
`packages` list replaces the site's instead of being merged into it):

    default  built-in defaults of the templates (DEFAULTS below)
    global   the config file's top-level `vars:`
    site     `site:` (name, domain, timezone, ssh_authorized_keys) then `site.vars`
    profile  the profile's `vars`
    node     the node's own `vars`

Facts about the node (hostname, MACs, its seed URLs, ...) come last as the layer `dgxie`; a
variable layer cannot override them (`explain` shows which layer tried).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LAYERS = ("default", "global", "site", "profile", "node", "dgxie")

DEFAULTS: dict[str, Any] = {
    "admin_user": "dgxie",
    "admin_password_hash": "!",  # locked: log in with an SSH key (set a crypt(3) hash to allow passwords)
    "disk_layout": "lvm",  # lvm | direct | raid1 (raid1 needs os_disks: [two disk paths])
    "os_disks": [],
    "locale": "en_US.UTF-8",
    "keyboard_layout": "us",
    "packages": [],
    "early_commands": [],
    "late_commands": [],
    "apt_mirror": None,  # the name of a dgxie APT mirror (config `mirrors:`), else the distribution's
    "install_url": None,  # RHEL: a repository URL for `url --url=` (else inst.repo= on the cmdline)
    "apt_suite": None,  # e.g. bookworm for Debian; Ubuntu takes the installer's own
    "kernel_flavor": None,  # e.g. hwe
    "reboot": True,
    "vendor_data": {},  # extra #cloud-config for the installer environment (Ubuntu vendor-data)
}


@dataclass(frozen=True)
class Merged:
    """The merged variables, the layer each one came from, and the layers it overrode."""

    values: dict[str, Any]
    source: dict[str, str]
    overridden: dict[str, list[str]] = field(default_factory=dict)

    def explain(self) -> list[tuple[str, Any, str, list[str]]]:
        """(key, value, layer, lower layers that also set it), sorted by key."""
        return [(k, self.values[k], self.source[k], self.overridden.get(k, [])) for k in sorted(self.values)]


def merge(layers: Sequence[tuple[str, Mapping[str, Any]]]) -> Merged:
    """Merge `(layer name, vars)` pairs, later layers winning key by key."""
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    overridden: dict[str, list[str]] = {}
    for name, layer in layers:
        for key, value in layer.items():
            if key in source:
                overridden.setdefault(key, []).append(source[key])
            values[key] = value
            source[key] = name
    return Merged(values=values, source=source, overridden=overridden)


def site_layer(name: str, domain: str, timezone: str, ssh_keys: Sequence[str],
               site_vars: Mapping[str, Any]) -> dict[str, Any]:
    """The `site` layer: the `site:` keys themselves, then `site.vars` over them."""
    return {"site_name": name, "domain": domain, "timezone": timezone,
            "ssh_authorized_keys": list(ssh_keys)} | dict(site_vars)


def layered(*, global_vars: Mapping[str, Any], site: Mapping[str, Any], profile: Mapping[str, Any],
            node: Mapping[str, Any], facts: Mapping[str, Any]) -> Merged:
    """The standard stack: default -> global -> site -> profile -> node, then the node's facts."""
    return merge([("default", DEFAULTS), ("global", global_vars), ("site", site), ("profile", profile),
                  ("node", node), ("dgxie", facts)])
