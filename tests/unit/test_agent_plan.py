"""The agent's answers (dgxie.agent.plan): the mode table and the shell text the agent sources."""

from __future__ import annotations

import subprocess

import pytest

from dgxie.agent.plan import DeployPlan, Mode, erase_text, mode_for, shell_vars
from dgxie.boot.state import State


@pytest.mark.parametrize(("state", "image", "first", "commissioned", "mode"), [
    (State.DISCOVERED, False, True, True, Mode.COMMISSION),  # every boot reports fresh facts
    (State.DISCOVERED, False, False, False, Mode.COMMISSION),
    (State.DISCOVERED, False, False, True, Mode.WAIT),
    (State.ENROLLED, True, True, True, Mode.DEPLOY),
    (State.INSTALLING, True, False, True, Mode.DEPLOY),  # a reboot mid-deploy starts it again
    (State.ENROLLED, False, True, True, Mode.REBOOT),  # an installer profile: PXE hands the installer
    (State.ERASING, False, True, True, Mode.ERASE),
    (State.FAILED, True, False, True, Mode.WAIT),
    (State.INSTALLED, True, True, True, Mode.REBOOT),
    (State.READY, True, True, True, Mode.REBOOT),
])
def test_mode_table(state: State, image: bool, first: bool, commissioned: bool, mode: Mode) -> None:
    assert mode_for(state, image_deploy=image, first_hello=first, commissioned=commissioned) is mode


def _source(text: str, names: list[str]) -> dict[str, str]:
    """What a POSIX shell sees after sourcing `text` (the agent runs busybox sh; dash is POSIX too)."""
    script = text + "".join(f'printf "%s\\0" "${n}"\n' for n in names)
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.decode()
    return dict(zip(names, out.split("\0")[:-1], strict=True))


def test_shell_vars_survive_hostile_values() -> None:
    nasty = "a'b\"c $(reboot) `id` ;\n|| & \\ *"
    text = shell_vars({"A": nasty, "B": ["x y", "z"], "C": 7})
    assert _source(text, ["A", "B", "C"]) == {"A": nasty, "B": "x y z", "C": "7"}
    with pytest.raises(ValueError, match="shell variable"):
        shell_vars({"a;reboot": "x"})


def test_deploy_plan_text() -> None:
    p = DeployPlan(hostname="dgx01", layout="raid1", disks=("/dev/nvme0n1", "/dev/nvme1n1"), serials=("S1", ""),
                   sizes=(1 << 40, 1 << 40), image_url="http://10.0.0.1:8080/images/debian-12/rootfs.tar.zst",
                   image_sha256="ab" * 32, image_size=123, image_format="tar.zst",
                   seed_url="http://10.0.0.1:8080/boot/n/tok/", cmdline="console=ttyS0,115200 quiet", token="t0k")
    got = _source(p.text(), ["DGXIE_TOKEN", "PLAN_DISKS", "PLAN_DISK_SERIALS", "PLAN_DISK_SIZES", "PLAN_CMDLINE",
                             "PLAN_LAYOUT"])
    assert got == {"DGXIE_TOKEN": "t0k", "PLAN_DISKS": "/dev/nvme0n1 /dev/nvme1n1", "PLAN_DISK_SERIALS": "S1 -",
                   "PLAN_DISK_SIZES": f"{1 << 40} {1 << 40}", "PLAN_CMDLINE": "console=ttyS0,115200 quiet",
                   "PLAN_LAYOUT": "raid1"}
    assert _source(erase_text("t", ["/dev/sda", "/dev/sdb"]), ["PLAN_DISKS"]) == {"PLAN_DISKS": "/dev/sda /dev/sdb"}
