"""Killing a command's whole process tree (Linux /proc); shared by the ansible runner and the hooks."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def descendants(root: int) -> list[int]:
    """`root` and every process below it (Linux /proc), collected before anything is killed."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def kill_tree(root: int) -> None:
    """SIGKILL `root`'s whole tree: its process group, and any group or session a descendant made
    for itself (Ansible's workers call setsid(), so killing the first group alone leaves them running)."""
    pids = descendants(root)
    groups = {root}
    for pid in pids:
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(pid))
    for pgid in groups - {os.getpgrp()}:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
