"""What dgxie tells its deploy agent, as shell-sourceable text (pure).

The agent is a busybox shell script: it `eval`s these answers, so every value goes through
`shlex.quote` and every name is a fixed upper-case identifier. Contract: docs/deploy.md.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from dgxie.boot.state import State

NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


class Mode(StrEnum):
    """What the agent does after its hello."""

    COMMISSION = "commission"  # report facts, then wait
    WAIT = "wait"  # ask again later (a discovered node not yet enrolled)
    DEPLOY = "deploy"  # fetch the plan, write the image, report, reboot
    ERASE = "erase"  # wipe every disk, report, power off
    REBOOT = "reboot"  # nothing for the agent: boot again (the PXE script decides)


def mode_for(state: str, *, image_deploy: bool, first_hello: bool, commissioned: bool) -> Mode:
    """The agent's mode for a node in `state` (pure; the table in docs/deploy.md)."""
    if state == State.DISCOVERED:
        return Mode.COMMISSION if first_hello or not commissioned else Mode.WAIT
    if state in (State.ENROLLED, State.INSTALLING):
        return Mode.DEPLOY if image_deploy else Mode.REBOOT
    if state == State.ERASING:
        return Mode.ERASE
    if state == State.FAILED:
        return Mode.WAIT  # stay up for the admin (console, logs); a reprovision makes it deploy again
    return Mode.REBOOT


def shell_vars(values: Mapping[str, str | int | Sequence[str]]) -> str:
    """`NAME='value'` lines; a list becomes one space-separated value. ValueError on a bad name."""
    lines = []
    for name, value in values.items():
        if not NAME_RE.match(name):
            raise ValueError(f"{name!r} is not a shell variable name")
        if isinstance(value, (list, tuple)):
            value = " ".join(str(v) for v in value)
        lines.append(f"{name}={shlex.quote(str(value))}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class DeployPlan:
    """Everything the agent needs to write one node's disk (all URLs on dgxie)."""

    hostname: str
    layout: str  # direct | raid1
    disks: tuple[str, ...]  # device paths, e.g. /dev/vda
    serials: tuple[str, ...]
    sizes: tuple[int, ...]
    image_url: str
    image_sha256: str
    image_size: int
    image_format: str
    seed_url: str
    cmdline: str
    token: str

    def text(self) -> str:
        return shell_vars({
            "DGXIE_TOKEN": self.token, "PLAN_HOSTNAME": self.hostname, "PLAN_LAYOUT": self.layout,
            "PLAN_DISKS": self.disks, "PLAN_DISK_SERIALS": [s or "-" for s in self.serials],
            "PLAN_DISK_SIZES": [str(s) for s in self.sizes], "PLAN_IMAGE_URL": self.image_url,
            "PLAN_IMAGE_SHA256": self.image_sha256, "PLAN_IMAGE_SIZE": self.image_size,
            "PLAN_IMAGE_FORMAT": self.image_format, "PLAN_SEED_URL": self.seed_url, "PLAN_CMDLINE": self.cmdline,
        })


def erase_text(token: str, disks: Sequence[str]) -> str:
    """The erase plan: every disk the agent reported (it re-checks them itself)."""
    return shell_vars({"DGXIE_TOKEN": token, "PLAN_DISKS": list(disks)})
