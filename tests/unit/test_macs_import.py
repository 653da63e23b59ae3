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
    names = [p.name for _, p in plan.profiles]
    assert "dgx-1-example" in names and len(names) == 7
    dgx1 = dict((p.name, p) for _, p in plan.profiles)["dgx-1-example"]
    assert dgx1.vars["mac_match"] == "d8:c4:97.*" and dgx1.vars["initrd_urls"][0].endswith("initrd.gz")
    conf = SHARED / "reference/deepops/dgxie-dnsmasq.extra.conf.example"
    assert parse_file(conf.name, conf.read_text()).nodes == []  # its only dhcp-host line is commented out


def test_csv_bad_row_named() -> None:
    text = "hostname,mac,ip,tags\nn1,02:00:00:00:00:01,10.0.0.1,a;b\nn2,not-a-mac,,\n"
    with pytest.raises(Invalid, match=r"nodes.csv row 3 \(n2\): mac: 'not-a-mac' is not a MAC"):
        parse_file("nodes.csv", text)
    plan = parse_file("nodes.csv", text.splitlines(keepends=True)[0] + text.splitlines(keepends=True)[1])
    assert plan.nodes[0][1].tags == ["a", "b"]


def test_unknown_format() -> None:
    with pytest.raises(Invalid, match="unknown format"):
        parse_file("nodes.txt", "hello")
