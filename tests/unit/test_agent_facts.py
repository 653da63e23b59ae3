"""The facts bundle: read_tar's refusals, parse_bundle on captured and constructed bundles, degrading."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dgxie.agent.facts import MEMBERS, SUMMARY_KEYS, Facts, commissioning_facts, parse_bundle, read_tar, summary
from dgxie.agent.parse import cpuinfo, dmi_records, ipmi_lan, lspci
from dgxie.errors import Invalid, TooLarge
from dgxie.handoff.records import FACT_KEYS
from tests.support.agent import FIXTURES, members


def tar(entries: list[tuple[str, bytes]], *, kind: bytes = tarfile.REGTYPE, fmt: int = tarfile.GNU_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.type, info.size = kind, len(data) if kind == tarfile.REGTYPE else 0
            t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def test_summary_keys_are_the_inventory_keys() -> None:
    assert SUMMARY_KEYS == FACT_KEYS


def test_read_tar_round_trips_a_bundle() -> None:
    m = members("vm-firecracker")
    assert read_tar(tar(sorted(m.items())), max_bytes=1 << 20) == m


def test_read_tar_accepts_tar_c_dir_dot() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        d = tarfile.TarInfo("./")
        d.type = tarfile.DIRTYPE
        t.addfile(d)
        info = tarfile.TarInfo("./agent.txt")
        info.size = 9
        t.addfile(info, io.BytesIO(b"version=1"))
    assert read_tar(buf.getvalue(), max_bytes=1 << 20) == {"agent.txt": b"version=1"}


@pytest.mark.parametrize(("data", "message"), [
    (b"", "not a readable tar archive"),
    (b"\x1f\x8b" + b"x" * 600, "not a readable tar archive"),
    (tar([("agent.txt", b"a"), ("../etc/passwd", b"x")]), "member '../etc/passwd' is not one of agent.txt"),
    (tar([("agent.txt", b"a"), ("sub/net.txt", b"x")]), "member 'sub/net.txt' is not one of"),
    (tar([("agent.txt", b"a"), ("notes.txt", b"x")]), "member 'notes.txt' is not one of"),
    (tar([("agent.txt", b"a"), ("agent.txt", b"b")]), "has agent.txt twice"),
    (tar([("net.txt", b"x")]), "has no agent.txt"),
    (tar([("agent.txt", b"")], kind=tarfile.SYMTYPE), "'agent.txt' is not a regular file"),
    (tar([("lspci.txt", b"")], kind=tarfile.LNKTYPE), "'lspci.txt' is not a regular file"),
    (tar([("agent.txt", b"")], kind=tarfile.DIRTYPE), "'agent.txt' is not a regular file"),
    (tar([("agent.txt", b"")], kind=tarfile.FIFOTYPE), "'agent.txt' is not a regular file"),
    (tar([("agent.txt", b"")], kind=tarfile.GNUTYPE_SPARSE), "'agent.txt' is not a regular file"),
    (tar([("agent.txt", b"version=1" * 100)])[:700], "not a readable tar archive"),
])
def test_read_tar_refuses(data: bytes, message: str) -> None:
    with pytest.raises(Invalid, match=r"^facts bundle") as err:
        read_tar(data, max_bytes=1 << 20)
    assert message in err.value.detail


def test_read_tar_caps_the_size() -> None:
    data = tar([("agent.txt", b"v" * 5000)])
    assert read_tar(data, max_bytes=len(data)) == {"agent.txt": b"v" * 5000}
    with pytest.raises(TooLarge, match=f"is {len(data)} bytes, more than the {len(data) - 1} allowed"):
        read_tar(data, max_bytes=len(data) - 1)


def test_the_vm_capture() -> None:
    f = parse_bundle(members("vm-firecracker"))
    assert (f.cpus, f.sockets, f.cores_per_socket, f.threads_per_core, f.cpu_model) == (2, 1, 2, 1, "AMD EPYC")
    assert (f.memory_mib, f.memory_installed_mib) == (24684084 // 1024, None)
    assert (f.manufacturer, f.model, f.serial, f.uuid) == (None, None, None, None)  # no SMBIOS on this VM
    assert [(d.name, d.size, d.by_path, d.rotational) for d in f.disks] == [
        ("vda", 274877906944, "pci-0000:00:02.0", True)]  # zram0 (TYPE disk) skipped
    assert [(n.name, n.driver, n.speed_mbps, n.link) for n in f.nics] == [
        ("eth0", "virtio_net", None, True), ("ifb0", None, None, False), ("ifb1", None, None, False)]
    assert (f.gpus, f.nvswitches, f.gpu_model) == (0, 0, None)
    assert [(p.slot, p.kind) for p in f.pci if p.kind] == [("0000:00:03.0", "nic")]
    assert (f.boot_mode, f.kernel, f.bmc_ip) == ("bios", "6.18.44-fc-v669", None)


def test_the_dgx_bundle() -> None:
    f = parse_bundle(members("dgx-h200-constructed"))
    assert summary(f) == {"cpus": 224, "sockets": 2, "cores_per_socket": 56, "threads_per_core": 2,
                          "memory_mib": 2063937, "gpus": 8, "gpu_model": None, "model": "DGXH100",
                          "manufacturer": "NVIDIA", "serial": "1662923610124"}
    assert (f.uuid, f.chassis_serial, f.bios_version) == ("b11dd4f2-bfde-1000-02bc-5cff35fbe6e9", "1663123000052", "1.1.3")
    assert f.memory_installed_mib == 32 * 64 * 1024
    assert f.nvswitches == 4 and sum(p.kind == "nic" for p in f.pci) == 14
    gpu = next(p for p in f.pci if p.kind == "gpu")
    assert (gpu.slot, gpu.vendor_id, gpu.device_id, gpu.class_id, gpu.subsystem_id, gpu.device) == (
        "0000:1b:00.0", "10de", "2335", "0302", "18bf", None)
    vga = next(p for p in f.pci if p.class_id == "0300")
    assert vga.vendor_id == "1a03" and vga.kind is None  # the BMC's VGA is no GPU
    assert [d.name for d in f.disks] == ["sda"] + [f"nvme{i}n1" for i in range(10)]  # sr0 is TYPE rom
    assert f.disks[0].by_path == "pci-0000:00:14.0-usb-0:4:1.0-scsi-0:0:0:0"
    assert f.disks[1].by_path == "pci-0000:ac:00.0-nvme-1"  # multipath: through the nvme0 controller line
    assert (f.bmc_ip, f.bmc_mac, f.boot_mode, f.boot_mac) == ("10.0.0.5", "5c:ff:35:fb:e6:e9", "uefi",
                                                              "5c:ff:35:e0:00:10")
    ib = next(n for n in f.nics if n.name == "ibp24s0")
    assert (ib.speed_mbps, ib.link) == (400000, True)


def test_json_round_trip_and_the_stored_shape() -> None:
    f = parse_bundle(members("dgx-h200-constructed"))
    stored = commissioning_facts(f)
    assert set(stored) == {*FACT_KEYS, "detail"}
    assert stored["detail"]["pci"][0]["class"] == "Host bridge"
    assert Facts.model_validate(stored["detail"]) == f
    assert Facts.model_validate({**stored["detail"], "added_later": 1}) == f


def test_missing_members_are_missing_facts() -> None:
    f = parse_bundle({"agent.txt": b"version=1\nboot_mode=UEFI\n"})
    assert summary(f) == dict.fromkeys(FACT_KEYS)
    assert (f.agent_version, f.boot_mode, f.disks, f.pci) == ("1", "uefi", (), ())
    assert parse_bundle({}) == Facts()


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(MEMBERS), st.binary(max_size=400)))
def test_garbage_never_raises(garbage: dict[str, bytes]) -> None:
    parse_bundle(garbage)
    parse_bundle({k: members("dgx-h200-constructed").get(k, b"")[: len(v) * 7] + v for k, v in garbage.items()})


def test_dmi_serial_falls_back_past_placeholders() -> None:
    text = ("Handle 0x0001, DMI type 1, 27 bytes\nSystem Information\n\tManufacturer: Supermicro\n"
            "\tProduct Name: SYS-821GE-TNHR\n\tSerial Number: To Be Filled By O.E.M.\n"
            "\tUUID: 00000000-0000-0000-0000-000000000000\n\n"
            "Handle 0x0002, DMI type 2, 15 bytes\nBase Board Information\n\tSerial Number: OM23BS000123\n\n"
            "Handle 0x0003, DMI type 3, 22 bytes\nChassis Information\n\tSerial Number: Not Specified\n")
    f = parse_bundle({"agent.txt": b"", "dmidecode.txt": text.encode()})
    assert (f.serial, f.chassis_serial, f.baseboard_serial, f.uuid) == ("OM23BS000123", None, "OM23BS000123", None)
    assert [t for t, _ in dmi_records(text)] == [1, 2, 3]


def test_arm_cpuinfo_takes_the_topology_from_dmi() -> None:
    cpu = "".join(f"processor\t: {i}\nBogoMIPS\t: 2000.00\nCPU implementer\t: 0x41\n\n" for i in range(144))
    dmi = "".join(f"Handle 0x00{i}0, DMI type 4, 48 bytes\nProcessor Information\n\tVersion: Grace A02\n"
                  f"\tStatus: Populated, Enabled\n\tCore Count: 72\n\n" for i in range(2))
    assert cpuinfo(cpu)["sockets"] is None
    f = parse_bundle({"cpuinfo.txt": cpu.encode(), "dmidecode.txt": dmi.encode()})
    assert (f.cpus, f.sockets, f.cores_per_socket, f.threads_per_core, f.cpu_model) == (144, 2, 72, 1, "Grace A02")


def test_ipmi_lan_print() -> None:
    assert ipmi_lan((FIXTURES / "ipmi-sim" / "ipmi-lan.txt").read_text()) == (None, None)  # real capture, no address
    assert ipmi_lan("IP Address              : 10.1.2.3\nMAC Address             : 3C:EC:EF:00:11:22\n") == (
        "10.1.2.3", "3c:ec:ef:00:11:22")
    assert ipmi_lan("IP Address              : 10.1.2.300\n") == (None, None)


@pytest.mark.parametrize(("vendor", "cls", "kind"), [
    ("NVIDIA Corporation [10de]", "3D controller [0302]", "gpu"),
    ("NVIDIA Corporation [10de]", "VGA compatible controller [0300]", "gpu"),
    ("NVIDIA Corporation [10de]", "Bridge [0680]", "nvswitch"),
    ("NVIDIA Corporation [10de]", "Audio device [0403]", None),
    ("Mellanox Technologies [15b3]", "Infiniband controller [0207]", "nic"),
    ("Intel Corporation [8086]", "Ethernet controller [0200]", "nic"),
    ("ASPEED Technology, Inc. [1a03]", "VGA compatible controller [0300]", None),
    ("Intel Corporation [8086]", "Bridge [0680]", None),
])
def test_pci_kinds(vendor: str, cls: str, kind: str | None) -> None:
    (dev,) = lspci(f"Slot:\t0000:01:00.0\nClass:\t{cls}\nVendor:\t{vendor}\nDevice:\tGH100 [H100 SXM5 80GB] [2330]\n")
    assert dev.kind == kind and dev.device == "GH100 [H100 SXM5 80GB]" and dev.device_id == "2330"


def test_fixture_readme_names_every_folder() -> None:
    readme = (FIXTURES / "README.md").read_text()
    assert all(f"`{p.name}/" in readme for p in FIXTURES.iterdir() if p.is_dir())


def test_a_section_that_breaks_costs_only_its_own_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    from dgxie.agent import parse

    monkeypatch.setattr(parse, "meminfo_mib", lambda text: 1 / 0)
    monkeypatch.setattr(parse, "nics", lambda text: "not a list of nics")
    f = parse_bundle(members("vm-firecracker"))
    assert (f.memory_mib, f.nics, f.cpus, len(f.disks)) == (None, (), 2, 1)


def test_sysfs_serials_fill_what_lsblk_left_empty() -> None:
    """The agent runs no udev, so lsblk has no serials; block-serial.txt (sysfs) fills them, and
    never overrides one lsblk did read."""
    lsblk_json = (b'{"blockdevices": [{"name": "vda", "path": "/dev/vda", "size": 6442450944, "serial": null,'
                  b' "type": "disk", "rm": false, "rota": true},'
                  b' {"name": "sda", "path": "/dev/sda", "size": 1000, "serial": "FROM-LSBLK", "type": "disk"}]}')
    facts = parse_bundle({"agent.txt": b"version=1\n", "lsblk.json": lsblk_json,
                          "block-serial.txt": b"vda\tE2E-DISK-0\nsda\tFROM-SYSFS\nvdb\t\n"})
    assert {d.name: d.serial for d in facts.disks} == {"vda": "E2E-DISK-0", "sda": "FROM-LSBLK"}
