"""`dgxie profile ...`, `dgxie image delete`, and output a script can trust (piped tables in full, `-o json`)
and a person can read (`node show`), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

LONG_HOST = "dgx-h100-rack07-node042-long-hostname"
MAC = "aa:bb:cc:00:00:42"


def test_profile_commands_and_image_delete(cli, tmp_path: Path) -> None:
    (tmp_path / "vmlinuz").write_bytes(b"k" * 64)
    (tmp_path / "initrd.img").write_bytes(b"i" * 64)
    r = cli("image", "add", "ubuntu-2404", "--kernel", str(tmp_path / "vmlinuz"), "--initrd",
            str(tmp_path / "initrd.img"), "--cmdline", "console=ttyS0")
    assert r.code == 0, r.err
    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text("admin_user: ops\npackages: [htop]\n")
    r = cli("profile", "add", "gpu", "--image", "ubuntu-2404", "--role", "slurmd", "--description", "GPU nodes",
            "--vars-file", str(vars_file), "--var", "disk_layout=direct")
    assert r.code == 0, r.err
    shown = json.loads(cli("profile", "show", "gpu", "-o", "json").out)
    assert shown["image"] == "ubuntu-2404" and shown["source"] == "cli"
    assert shown["vars"] == {"admin_user": "ops", "packages": ["htop"], "disk_layout": "direct"}
    r = cli("profile", "set", "gpu", "--var", "packages=[htop, nvtop]", "--description", "GPU, rack 2")
    assert r.code == 0, r.err
    shown = json.loads(cli("profile", "show", "gpu", "--json").out)
    assert shown["vars"]["packages"] == ["htop", "nvtop"] and shown["vars"]["admin_user"] == "ops"
    assert shown["description"] == "GPU, rack 2"
    r = cli("profile", "show", "gpu")
    assert r.code == 0 and "vars:\n  " in r.out and "\n  admin_user:  ops\n" in r.out, r.out
    assert "\n  packages:    htop, nvtop\n" in r.out, r.out
    listed = cli("profile", "list").out.splitlines()
    assert listed[0].split("\t")[:3] == ["name", "image", "template"]
    assert listed[1].split("\t")[:4] == ["gpu", "ubuntu-2404", "ubuntu/autoinstall", "slurmd"]

    assert cli("node", "add", "n1", "--mac", "02:00:00:00:00:01", "--profile", "gpu").code == 0
    for args, needle in ((("image", "delete", "ubuntu-2404"), "image ubuntu-2404 is used by 1 profile(s)"),
                         (("profile", "delete", "gpu"), "profile gpu is used by 1 node(s)"),
                         (("profile", "show", "nope"), "unknown profile 'nope'"),
                         (("image", "delete", "nope"), "unknown image 'nope'"),
                         (("profile", "add", "gpu"), "profile gpu already exists"),
                         (("profile", "add", "x", "--image", "nope"), "unknown image 'nope'"),
                         (("profile", "set", "gpu"), "nothing to change"),
                         (("profile", "add", "y", "--var", "novalue"), "expected KEY=VALUE")):
        r = cli(*args)
        assert r.code == 1 and needle in r.err and len(r.err.strip().splitlines()) == 1, (args, r.err)
    assert cli("node", "delete", "n1").code == 0
    assert cli("profile", "delete", "gpu").code == 0
    assert cli("image", "delete", "ubuntu-2404").code == 0
    assert json.loads(cli("image", "list", "-o", "json").out) == []
    assert json.loads(cli("profile", "list", "-o", "json").out) == []


def test_piped_node_list_is_complete_and_node_show_is_readable(cli) -> None:
    r = cli("node", "add", LONG_HOST, "--mac", MAC, "--ip", "10.100.200.42", "--role", "slurmd",
            "--tag", "rack07", "--tag", "h100-sxm5-80gb", "--bmc", "https://10.100.201.42")
    assert r.code == 0, r.err
    r = cli("node", "list")
    lines = r.out.splitlines()
    assert lines[0].split("\t") == ["hostname", "mac", "ip", "profile", "role", "state", "tags"]
    assert lines[1].split("\t") == [LONG_HOST, MAC, "10.100.200.42", "", "slurmd", "enrolled",
                                    "h100-sxm5-80gb,rack07"]
    assert r.err.strip() == "1 of 1"
    assert json.loads(cli("node", "list", "-o", "json").out)[0]["hostname"] == LONG_HOST
    out = cli("node", "show", MAC).out
    assert "None" not in out and "['" not in out and "{'" not in out, out
    assert f"hostname:         {LONG_HOST}" in out and "profile:          -" in out
    assert "tags:             h100-sxm5-80gb, rack07" in out
    assert "bmc:\n  url:" in out and "https://10.100.201.42" in out
    assert json.loads(cli("node", "show", MAC, "-o", "json").out)["mac"] == MAC
