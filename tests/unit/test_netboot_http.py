"""The boot fast path's HTTP pieces (RFC 9110 Range, RFC 9112 heads) and the iPXE templates."""

from __future__ import annotations

import pytest

from dgxie.errors import Unavailable
from dgxie.ipxe.render import render
from dgxie.netboot import http


def test_parse_head() -> None:
    h = http.parse_head(b"GET /boot/ipxe?mac=52%3A54%3A00%3A00%3A00%3A01 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9")
    assert h is not None
    assert (h.method, h.path, h.query["mac"], h.keep_alive) == ("GET", "/boot/ipxe", ["52:54:00:00:00:01"], True)
    assert h.headers["range"] == "bytes=0-9"
    h10 = http.parse_head(b"GET /x HTTP/1.0")
    assert h10 is not None and not h10.keep_alive
    assert http.parse_head(b"GET /x HTTP/2") is None
    assert http.parse_head(b"GARBAGE") is None
    assert http.parse_head(b"GET /x HTTP/1.1\r\nno colon") is None
    body = http.parse_head(b"GET /x HTTP/1.1\r\nContent-Length: 5")
    assert body is not None and body.has_body


@pytest.mark.parametrize(("value", "want"), [
    (None, None), ("bytes=0-99", (0, 99)), ("bytes=100-", (100, 999)), ("bytes=-10", (990, 999)),
    ("bytes=990-5000", (990, 999)), ("bytes=0-1,5-6", None), ("items=0-1", None), ("bytes=5-1", None),
    ("bytes=abc", None), ("bytes=-2000", (0, 999)),
])
def test_parse_range(value: str | None, want: tuple[int, int] | None) -> None:
    assert http.parse_range(value, 1000) == want


@pytest.mark.parametrize("value", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable(value: str) -> None:
    with pytest.raises(http.Unsatisfiable):
        http.parse_range(value, 1000)


IMAGE = {"image": "img", "kernel_url": "http://s/images/img/vmlinuz", "initrd_url": "http://s/images/img/initrd.img",
         "initrd_name": "initrd.img", "cmdline": "console=ttyS0"}


def test_install_and_discovery_scripts() -> None:
    out = render("ipxe/install.ipxe.j2", {"mac": "52:54:00:00:00:01", "hostname": "n1", "reason": "r",
                                          "action": "install"} | IMAGE)
    assert out.startswith("#!ipxe\n")
    assert "kernel http://s/images/img/vmlinuz initrd=initrd.img console=ttyS0" in out  # gotcha 9: UEFI initrd=
    assert "initrd http://s/images/img/initrd.img" in out and "\nboot " in out
    disc = render("ipxe/discovery.ipxe.j2", {"mac": "m", "hostname": "", "reason": "r", "action": "discovery"} | IMAGE)
    assert "discovery image img" in disc and "kernel http://s/images/img/vmlinuz" in disc


def test_local_and_ignore_scripts() -> None:
    base = {"mac": "m", "hostname": "n1", "reason": "installed", "action": "local"}
    local = render("ipxe/local.ipxe.j2", base | {"local_efi_url": ""})
    assert "sanboot --no-describe --drive 0x80" in local and "iseq ${platform} efi" in local
    # UEFI: a failure status, or the firmware shows its boot menu instead of booting the disk
    assert local.rstrip().endswith("\nexit 1") and "kernel" not in local and "chain" not in local
    # with the agent's local-boot loader: chain it first (it finds the disk's loader), exit 1 if it fails
    efi = render("ipxe/local.ipxe.j2", base | {"local_efi_url": "http://s/images/agent/grubx64.efi"})
    assert "\nchain --autofree http://s/images/agent/grubx64.efi ||\n" in efi and efi.rstrip().endswith("exit 1")
    ign = render("ipxe/ignore.ipxe.j2", {"mac": "m", "hostname": "", "reason": "r", "action": "ignore",
                                         "message": "is not enrolled"})
    assert "echo dgxie: m is not enrolled" in ign and ign.rstrip().endswith("exit 1")


def test_strict_undefined_and_missing_template() -> None:
    with pytest.raises(Unavailable, match="undefined"):
        render("ipxe/install.ipxe.j2", {"mac": "m"})
    with pytest.raises(Unavailable, match="not found"):
        render("ipxe/nope.ipxe.j2", {})
