"""The kernel arguments an installer needs to find its dgxie config (pure)."""

from __future__ import annotations

import pytest

from dgxie.boot.installargs import complete, what_points_elsewhere


@pytest.mark.parametrize(("template", "cmdline", "want", "added"), [
    ("ubuntu/autoinstall", "console=ttyS0", "console=ttyS0 autoinstall ds=nocloud-net;s={base}",
     ["autoinstall", "ds=nocloud-net;s={base}"]),
    ("ubuntu/autoinstall", "ip=dhcp --- quiet", "ip=dhcp autoinstall ds=nocloud-net;s={base} --- quiet",
     ["autoinstall", "ds=nocloud-net;s={base}"]),
    ("ubuntu/autoinstall", "autoinstall ds=nocloud-net;s={base} ---", "autoinstall ds=nocloud-net;s={base} ---", []),
    ("ubuntu/autoinstall", "", "autoinstall ds=nocloud-net;s={base}", ["autoinstall", "ds=nocloud-net;s={base}"]),
    ("debian/preseed", "hostname={hostname}", "hostname={hostname} auto=true priority=critical url={base}preseed",
     ["auto=true", "priority=critical", "url={base}preseed"]),
    ("debian/preseed", "auto=true priority=critical preseed/url=http://x/p", "auto=true priority=critical "
     "preseed/url=http://x/p", []),
    ("rhel/kickstart", "console=ttyS0", "console=ttyS0 inst.ks={base}kickstart", ["inst.ks={base}kickstart"]),
    ("rocky/kickstart", "ks=http://x/ks.cfg", "ks=http://x/ks.cfg", []),
    ("image/deploy", "console=ttyS0", "console=ttyS0", []),
    ("external", "quiet url=http://x/dgx.seed", "quiet url=http://x/dgx.seed", []),
    (None, "x", "x", []),
])
def test_complete(template: str | None, cmdline: str, want: str, added: list[str]) -> None:
    assert complete(template, cmdline) == (want, added)


def test_what_points_elsewhere() -> None:
    assert what_points_elsewhere("url=http://10.0.0.1:8080/boot/n/T/preseed") == []
    assert what_points_elsewhere("auto url=http://old/dgx.seed ds=nocloud-net;s=http://x/") == [
        "http://old/dgx.seed", "http://x/"]
