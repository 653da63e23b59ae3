"""udev's by-path names from sysfs paths: the cases systemd's path_id builds from the path alone."""

from __future__ import annotations

import pytest

from dgxie.agent.bypath import by_paths, same_path

P = "/sys/devices/pci0000:00"


@pytest.mark.parametrize(("path", "expected"), [
    (f"{P}/0000:00:04.0/virtio1/block/vda", "pci-0000:00:04.0"),
    (f"{P}/0000:00:02.0/virtio1/block/vda", "pci-0000:00:02.0"),  # the captured VM
    ("/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/nvme/nvme0/nvme0n1", "pci-0000:3b:00.0-nvme-1"),
    ("/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/nvme/nvme0/nvme0n2", "pci-0000:3b:00.0-nvme-2"),
    (f"{P}/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda", "pci-0000:00:1f.2-ata-1"),
    (f"{P}/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0/block/sdc", "pci-0000:00:1f.2-ata-3"),
    (f"{P}/0000:00:17.0/0000:18:00.0/host0/target0:2:0/0:2:0:0/block/sda", "pci-0000:18:00.0-scsi-0:2:0:0"),
    (f"{P}/0000:00:04.0/virtio2/host3/target3:0:1/3:0:1:0/block/sdb", "pci-0000:00:04.0-scsi-0:0:1:0"),  # virtio-scsi
    (f"{P}/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb",
     "pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0"),
    (f"{P}/0000:00:14.0/usb1/1-3/1-3.2/1-3.2:1.0/host7/target7:0:0/7:0:0:1/block/sdc",
     "pci-0000:00:14.0-usb-0:3.2:1.0-scsi-0:0:0:1"),
    # not derivable from the path: SAS, FC, iSCSI need sysfs attributes; virtual and platform devices
    (f"{P}/0000:00:03.0/0000:02:00.0/host0/port-0:0/end_device-0:0/target0:0:0/0:0:0:0/block/sda", None),
    (f"{P}/0000:00:03.0/0000:05:00.0/host1/rport-1:0-0/target1:0:0/1:0:0:0/block/sdb", None),
    ("/sys/devices/platform/host5/session1/target5:0:0/5:0:0:0/block/sdd", None),
    ("/sys/devices/virtual/block/loop0", None),
    ("/sys/devices/platform/fe330000.mmc/mmc_host/mmc0/mmc0:0001/block/mmcblk0", None),
    ("/sys/devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1", None),  # no controller line
    ("", None),
    ("not a path", None),
])
def test_by_path(path: str, expected: str | None) -> None:
    name = path.rsplit("/", 1)[-1] or "x"
    assert by_paths({name: path}) == {name: expected}


def test_multipath_nvme_resolves_through_the_controller_line() -> None:
    sysfs = {"nvme1n1": "/sys/devices/virtual/nvme-subsystem/nvme-subsys1/nvme1n1",
             "nvme1": "/sys/devices/pci0000:a8/0000:a8:02.0/0000:ac:00.0/nvme/nvme1",
             "nvme2n1": "/sys/devices/virtual/nvme-subsystem/nvme-subsys2/nvme2n1",
             "nvme2": "/sys/devices/virtual/nvme-fabrics/ctl/nvme2"}  # NVMe-oF: udev gives none either
    assert by_paths(sysfs) == {"nvme1n1": "pci-0000:ac:00.0-nvme-1", "nvme2n1": None}


def test_scsi_hosts_are_rebased_per_controller() -> None:
    hba = f"{P}/0000:00:17.0/0000:18:00.0"
    sysfs = {"sda": f"{hba}/host4/target4:0:0/4:0:0:0/block/sda", "sdb": f"{hba}/host5/target5:0:1/5:0:1:0/block/sdb"}
    assert by_paths(sysfs) == {"sda": "pci-0000:18:00.0-scsi-0:0:0:0", "sdb": "pci-0000:18:00.0-scsi-1:0:1:0"}


@pytest.mark.parametrize(("a", "b", "same"), [
    ("pci-0000:00:1f.2-ata-1", "pci-0000:00:1f.2-ata-1.0", True),
    ("pci-0000:00:1f.2-ata-1.0", "pci-0000:00:1f.2-ata-1", True),
    ("pci-0000:00:1f.2-ata-1", "pci-0000:00:1f.2-ata-1.1", False),
    ("pci-0000:00:1f.2-ata-1", "pci-0000:00:1f.2-ata-10", False),
    ("pci-0000:3b:00.0-nvme-1", "pci-0000:3b:00.0-nvme-1", True),
])
def test_same_path(a: str, b: str, same: bool) -> None:
    assert same_path(a, b) is same
