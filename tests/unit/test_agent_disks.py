"""The deploy disk choice: profile `disk:` rules, selection, pinning and the refusals."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dgxie.agent.disks import DiskRule, choose, human, parse_rule, parse_size
from dgxie.agent.facts import Disk, parse_bundle
from dgxie.errors import Invalid
from tests.support.agent import members

GiB = 1 << 30


def disk(name: str, gib: float, **kw: Any) -> Disk:
    return Disk(name=name, path=f"/dev/{name}", size=int(gib * GiB), **kw)


DGX = list(parse_bundle(members("dgx-h200-constructed")).disks)
VM = list(parse_bundle(members("vm-firecracker")).disks)


def names(disks: list[Disk]) -> list[str]:
    return [d.name for d in disks]


@pytest.mark.parametrize(("rule", "expected"), [
    ({}, ["nvme0n1"]),  # the USB stick (57 GiB) is smaller but not eligible
    ({"select": "largest"}, ["nvme2n1"]),
    ({"layout": "raid1"}, ["nvme0n1", "nvme1n1"]),  # the two M.2 OS drives
    ({"layout": "raid1", "select": "largest"}, ["nvme2n1", "nvme3n1"]),
    ({"min_size": "2TB"}, ["nvme2n1"]),  # 1.92 TB drives are below 2 TB
    ({"serial": "S64HNE0T700109"}, ["nvme8n1"]),
    ({"by_path": "/dev/disk/by-path/pci-0000:ad:00.0-nvme-1"}, ["nvme1n1"]),
    ({"name": "/dev/nvme5n1"}, ["nvme5n1"]),
    ({"layout": "raid1", "name": ["nvme9n1", "nvme2n1"]}, ["nvme9n1", "nvme2n1"]),  # pinned order kept
    ({"name": "sda"}, ["sda"]),  # pinned: the admin asked for the USB disk
])
def test_dgx_choices(rule: dict[str, Any], expected: list[str]) -> None:
    assert names(choose(DGX, parse_rule({"disk": rule}))) == expected


def test_the_vm_gets_its_one_disk() -> None:
    assert names(choose(VM, parse_rule({}))) == ["vda"]
    assert names(choose(VM, parse_rule({"disk": None, "other": 1}))) == ["vda"]


@pytest.mark.parametrize(("disks", "rule", "message"), [
    (VM, {"serial": "S"}, "no disk matches serial S (disks: vda 256 GiB)"),
    (VM, {"layout": "raid1"}, "raid1 needs 2 disks, found 1 (a non-removable, non-USB disk; disks: vda 256 GiB)"),
    (VM, {"min_size": "300G"}, "no disk to deploy to: need a non-removable, non-USB disk of at least 300 GiB "
                               "(disks: vda 256 GiB)"),
    (VM, {"name": "vda", "min_size": "1T"}, "disk vda (256 GiB) is smaller than min_size 1 TiB"),
    ([disk("sda", 16, transport="usb", removable=True, serial="X1")], {},
     "no disk to deploy to: need a non-removable, non-USB disk (disks: sda 16 GiB serial X1 usb removable)"),
    ([disk("vda", 0)], {}, "no disk to deploy to"),
    ([disk("vda", 20, serial="A"), disk("vdb", 20, serial="A")], {"serial": "A"}, "2 disks match serial A"),
    (VM, {"layout": "raid1", "name": ["vda", "/dev/vda"]}, "raid1 needs 2 different disks, name names vda twice"),
    ([], {}, "(disks: none)"),
])
def test_refusals(disks: list[Disk], rule: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid) as err:
        choose(disks, parse_rule({"disk": rule}))
    assert message in err.value.detail


def test_raid1_prefers_a_pair_of_equal_size() -> None:
    disks = [disk("sda", 480), disk("sdb", 960), disk("sdc", 960), disk("sdd", 480.5)]
    assert names(choose(disks, parse_rule({"disk": {"layout": "raid1"}}))) == ["sdb", "sdc"]
    assert names(choose(disks[:2], parse_rule({"disk": {"layout": "raid1"}}))) == ["sda", "sdb"]


def test_ties_go_to_the_lower_by_path_then_name() -> None:
    disks = [disk("sdb", 100, by_path="pci-0000:00:1f.2-ata-2"), disk("sda", 100, by_path="pci-0000:00:1f.2-ata-3"),
             disk("sdc", 100)]
    assert names(choose(disks, DiskRule())) == ["sdb"]
    assert names(choose(disks, DiskRule(by_path=("pci-0000:00:1f.2-ata-3.0",)))) == ["sda"]  # newer udev's form


@pytest.mark.parametrize(("vars", "message"), [
    ({"disk": "vda"}, "disk: must be a mapping"),
    ({"disk": {"layout": "raid5"}}, "disk: layout: Input should be 'direct' or 'raid1'"),
    ({"disk": {"select": "fastest"}}, "disk: select: Input should be 'smallest' or 'largest'"),
    ({"disk": {"serial": "A", "name": "vda"}}, "disk: pin the disks with one of serial, by_path, name (not serial and name)"),
    ({"disk": {"layout": "raid1", "serial": "A"}}, "disk: serial: layout raid1 needs 2 values, got 1"),
    ({"disk": {"serial": ["A", "B"]}}, "disk: serial: layout direct needs 1 value, got 2"),
    ({"disk": {"serial": " "}}, "disk: serial: must not be blank"),
    ({"disk": {"min_size": "lots"}}, "disk: min_size: 'lots' is not a size"),
    ({"disk": {"min_size": -5}}, "disk: min_size: -5 is not a size"),
    ({"disk": {"wipe": True}}, "disk: wipe: Extra inputs are not permitted"),
])
def test_rule_refusals(vars: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_rule(vars)
    assert err.value.detail.startswith(message), err.value.detail


@pytest.mark.parametrize(("text", "size"), [
    (1000, 1000), ("1000", 1000), ("100G", 100 * GiB), ("100GiB", 100 * GiB), ("100 gb", 100 * 10**9),
    ("1.5T", int(1.5 * 2**40)), ("2TB", 2 * 10**12), ("512M", 512 * 2**20), ("4k", 4096),
])
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@given(st.lists(st.tuples(st.integers(0, 1 << 44), st.booleans(), st.sampled_from([None, "usb", "nvme", "sata"])),
                max_size=8), st.sampled_from(["smallest", "largest"]), st.sampled_from(["direct", "raid1"]))
def test_choice_properties(specs: list[tuple[int, bool, str | None]], select: str, layout: str) -> None:
    disks = [Disk(name=f"d{i}", path=f"/dev/d{i}", size=s, removable=rm, transport=t) for i, (s, rm, t) in enumerate(specs)]
    rule = parse_rule({"disk": {"select": select, "layout": layout}})
    eligible = [d for d in disks if d.size > 0 and not d.removable and d.transport != "usb"]
    try:
        chosen = choose(disks, rule)
    except Invalid:
        assert len(eligible) < rule.disks_needed
        return
    assert len(chosen) == rule.disks_needed == len({d.name for d in chosen})
    assert all(d in eligible for d in chosen)
    if layout == "direct":
        best = min if select == "smallest" else max
        assert chosen[0].size == best(d.size for d in eligible)


def test_human() -> None:
    assert [human(x) for x in (512, 3 * 2**20, 20 * GiB, 1920383410176)] == ["512 B", "3 MiB", "20 GiB", "1.7 TiB"]
