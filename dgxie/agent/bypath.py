"""udev's by-path name of a disk from the sysfs path the agent read (pure).

The agent writes `NAME<TAB>$(readlink -f /sys/block/NAME)` per disk (docs/deploy.md), and for NVMe
also `nvmeN<TAB>$(readlink -f /sys/class/nvme/nvmeN)` per controller. This module rebuilds what
systemd's `udev-builtin-path_id.c` would call the disk, for the transports a path alone describes:

| sysfs path (after /sys/devices/...)                                  | by_path                             |
|----------------------------------------------------------------------|-------------------------------------|
| `0000:00:04.0/virtio1/block/vda`                                     | `pci-0000:00:04.0`                  |
| `0000:3b:00.0/nvme/nvme0/nvme0n1`                                    | `pci-0000:3b:00.0-nvme-1`           |
| `virtual/nvme-subsystem/nvme-subsys0/nvme0n1` (+ the `nvme0` line)   | the same, through the controller    |
| `0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda`              | `pci-0000:00:1f.2-ata-1`            |
| `0000:18:00.0/host0/target0:2:0/0:2:0:0/block/sda` (RAID HBA, SCSI)  | `pci-0000:18:00.0-scsi-0:2:0:0`     |
| `0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb`  | `pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0` |

Known limits, each because the bundle lacks a sysfs attribute udev reads:
- ATA: udev uses the port's `port_no` attribute (per controller, from 1); this uses the `ataN` of the
  path, a global counter. They agree on the first ATA controller (the common onboard AHCI), not on
  a second one. The name is udev's compatible `ata-N` link (ID_PATH_ATA_COMPAT, present on every
  systemd); newer udev also links `ata-N.T` (`T` the SCSI target), which `same_path` treats as equal.
- NVMe: udev reads the namespace's `nsid`; this takes the `nN` of `nvmeXnN` (they agree unless
  namespaces were deleted and re-created).
- SCSI hosts are rebased to the lowest host number among the given paths under the same parent
  (udev reads the directory; the same on one-host controllers).
- SAS (`end_device-`), Fibre Channel (`rport-`), iSCSI (`session`), Hyper-V, MMC and anything
  without a PCI parent: None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PCI = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_SCSI = re.compile(r"^(\d+):(\d+):(\d+):(\d+)$")
_HOST = re.compile(r"^host(\d+)$")
_ATA = re.compile(r"^ata(\d+)$")
_USB_INTF = re.compile(r"^\d+-([\d.]+:\d+\.\d+)$")
_NVME_NS = re.compile(r"^(nvme\d+)n(\d+)$")
_ATA_TARGET = re.compile(r"-ata-(\d+)\.0$")
_UNSUPPORTED = ("end_device-", "rport-", "session", "vmbus_", "VMBUS")


def by_paths(sysfs: Mapping[str, str]) -> dict[str, str | None]:
    """{name: by_path} for every block device in `sysfs` ({name: resolved sysfs path}); entries for
    NVMe controllers (`nvme0`) are used to resolve multipath namespaces and are not returned."""
    hosts: dict[str, int] = {}
    for path in sysfs.values():
        parts = path.split("/")
        for i, part in enumerate(parts):
            if (m := _HOST.match(part)) is not None:
                parent = "/".join(parts[:i])
                hosts[parent] = min(hosts.get(parent, int(m[1])), int(m[1]))
    return {name: by_path(name, path, sysfs, hosts) for name, path in sysfs.items() if not _is_controller(name)}


def _is_controller(name: str) -> bool:
    return re.fullmatch(r"nvme\d+", name) is not None


def by_path(name: str, path: str, sysfs: Mapping[str, str] | None = None,
            host_base: Mapping[str, int] | None = None) -> str | None:
    """The by-path name of block device `name` at resolved sysfs `path`, or None (see the module doc)."""
    path = path.strip().rstrip("/")
    ns = _NVME_NS.match(name)
    if "/devices/virtual/nvme-subsystem/" in path:
        ctrl = (sysfs or {}).get(ns[1]) if ns else None
        if ctrl is None or "/devices/virtual/" in ctrl or ns is None:
            return None
        path = f"{ctrl.rstrip('/')}/{name}"
    if not path.startswith("/sys/devices/") or path.startswith("/sys/devices/virtual/"):
        return None
    if any(marker in path for marker in _UNSUPPORTED):
        return None
    parts = path.split("/")
    pci_at = max((i for i, p in enumerate(parts) if _PCI.match(p)), default=-1)
    if pci_at < 0:
        return None
    pci, rest = parts[pci_at], parts[pci_at + 1:]
    scsi = next((_SCSI.match(p) for p in rest if _SCSI.match(p)), None)
    if ns is not None and "nvme" in rest:
        return f"pci-{pci}-nvme-{int(ns[2])}"
    if scsi is not None:
        ata = next((_ATA.match(p) for p in rest if _ATA.match(p)), None)
        if ata is not None:
            return f"pci-{pci}-ata-{int(ata[1])}"
        h, b, t, lun = (int(x) for x in scsi.groups())
        host_at = next((i for i, p in enumerate(parts) if _HOST.match(p)), None)
        if host_at is None:
            return None
        base = (host_base or {}).get("/".join(parts[:host_at]), h)
        usb = next((_USB_INTF.match(p) for p in rest if _USB_INTF.match(p)), None)
        usb_part = f"-usb-0:{usb[1]}" if usb is not None else ""
        return f"pci-{pci}{usb_part}-scsi-{h - base}:{b}:{t}:{lun}"
    if rest and rest[0].startswith("virtio") and "block" in rest:
        return f"pci-{pci}"
    return None


def same_path(a: str, b: str) -> bool:
    """Whether two by-path names name the same disk: equal, or udev's `ata-N` and `ata-N.0` forms."""
    return _ATA_TARGET.sub(r"-ata-\1", a.strip()) == _ATA_TARGET.sub(r"-ata-\1", b.strip())
