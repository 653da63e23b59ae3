"""MAC canonicalisation and the import parsers (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dgxie.errors import Invalid
from dgxie.nodes.importer import parse_dhcp_host, parse_file
from dgxie.nodes.macs import canonical_mac
from tests.support.paths import SHARED


@pytest.mark.parametrize("raw", ["aa:bb:cc:dd:ee:f0", "AA-BB-CC-DD-EE-F0", "aabb.ccdd.eef0", "AABBCCDDEEF0",
                                 " aa:bb:cc:dd:ee:f0 ", "a:bb:cc:dd:ee:f0".replace("a:", "aa:", 1)])
def test_accepted_spellings(raw: str) -> None:
    assert canonical_mac(raw) == "aa:bb:cc:dd:ee:f0"


@given(st.binary(min_size=6, max_size=6))
def test_roundtrip_any_unicast(raw: bytes) -> None:
    b = bytes([raw[0] & 0xFE]) + raw[1:]
    colon = ":".join(f"{x:02x}" for x in b)
    assert canonical_mac(colon.upper().replace(":", "-")) == colon
    assert canonical_mac(b.hex()[:4] + "." + b.hex()[4:8] + "." + b.hex()[8:]) == colon


@pytest.mark.parametrize("raw", ["", "aa:bb", "aa:bb:cc:dd:ee:ff:00", "zz:bb:cc:dd:ee:ff", "aa:bb-cc:dd:ee:ff",
                                 "01:00:5e:00:00:01", "12:34:56:78"])
def test_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        canonical_mac(raw)


def test_dhcp_host_lines() -> None:
    assert parse_dhcp_host("dhcp-host=00:11:22:33:44:55,server-01,192.168.1.23") == {
        "mac": "00:11:22:33:44:55", "hostname": "server-01", "ip": "192.168.1.23", "interfaces": []}
    row = parse_dhcp_host("dhcp-host=00:11:22:33:44:55,00:11:22:33:44:56,set:gpu,10.0.0.2,infinite")
    assert row == {"mac": "00:11:22:33:44:55", "interfaces": [{"mac": "00:11:22:33:44:56"}], "ip": "10.0.0.2",
                   "hostname": "node-001122334455"}
    assert parse_dhcp_host("dhcp-host=00:11:22:33:44:55,ignore") is None
    with pytest.raises(ValueError, match="not a MAC"):
        parse_dhcp_host("dhcp-host=12:34:56:78,server-01,192.168.1.23")  # DGXIE's own example is 4 bytes


def test_dgxie_reference_files() -> None:
    machines = SHARED / "reference/deepops/dgxie-machines.example.json"
    plan = parse_file(machines.name, machines.read_text())
    assert plan.errors == [] and len(plan.machines) == 7
    dgx1 = dict((m.slug, m) for _, m in plan.machines)["dgx-1-example"]
    assert dgx1.mac_match == "d8:c4:97.*" and dgx1.initrd is not None and dgx1.initrd.served == "initrd.gz"
    assert dgx1.kernel.local == "iso/install/netboot/ubuntu-installer/amd64/linux"
    assert "url={public_url}/images/dgx-1-example/dgx.seed " in dgx1.cmdline and "{{" not in dgx1.cmdline
    conf = SHARED / "reference/deepops/dgxie-dnsmasq.extra.conf.example"
    assert parse_file(conf.name, conf.read_text()).nodes == []  # its only dhcp-host line is commented out


def test_every_bad_row_is_listed() -> None:
    text = "hostname,mac,ip,tags\nn1,02:00:00:00:00:01,10.0.0.1,a;b\nn2,not-a-mac,,\nn3,02:00:00:00:00:03,x,\n"
    plan = parse_file("nodes.csv", text)
    assert [e.split(":")[0] for e in plan.errors] == ["nodes.csv row 3 (n2)", "nodes.csv row 4 (n3)"]
    assert "mac: 'not-a-mac' is not a MAC" in plan.errors[0]
    assert [n.hostname for _, n in plan.nodes] == ["n1"] and plan.nodes[0][1].tags == ["a", "b"]


def test_unknown_format() -> None:
    with pytest.raises(Invalid, match="unknown format"):
        parse_file("nodes.txt", "hello")
