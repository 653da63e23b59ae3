"""An image whose cmdline does not point its installer at dgxie still boots an installer that
finds its config: dgxie adds what the profile's template needs (dgxie.boot.installargs), and
`dgxie render NODE ipxe --explain` says so. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

BASE = r"http://127\.0\.0\.1:8080/boot/n/[\w-]+/"


@pytest.mark.parametrize(("template", "os", "needle"), [
    ("ubuntu/autoinstall", "ubuntu", rf"autoinstall ds=nocloud-net;s={BASE} "),
    ("debian/preseed", "debian", rf"auto=true priority=critical url={BASE}preseed "),
    ("rhel/kickstart", "rhel", rf"inst\.ks={BASE}kickstart "),
])
def test_missing_install_args_are_added(cli, config_file, tmp_path: Path, template: str, os: str,  # type: ignore[no-untyped-def]
                                        needle: str) -> None:
    (tmp_path / "vmlinuz").write_bytes(b"k")
    (tmp_path / "initrd.img").write_bytes(b"i")
    config_file(profiles={"p": {"image": "img", "template": template}})
    r = cli("image", "add", "img", "--kernel", str(tmp_path / "vmlinuz"), "--initrd", str(tmp_path / "initrd.img"),
            "--os", os, "--cmdline", "console=ttyS0 --- quiet")
    assert r.code == 0, r.err
    assert cli("node", "add", "n1", "--mac", "02:00:00:00:00:01", "--profile", "p").code == 0
    script = cli("render", "n1", "ipxe").out
    assert "installs img" in script, script
    assert re.search("console=ttyS0 " + needle + "--- quiet", script), script  # installed-system args stay after ---
    explain = cli("render", "n1", "ipxe", "--explain").out
    assert f"# note: added to image img's cmdline for template {template}" in explain, explain
