"""mmdebstrap from a mirror snapshot on disk, and the scratch directory a build works in.

`bootstrap` runs `mmdebstrap --mode=root --format=directory` with the snapshot as a `file://`
source, verified with the snapshot's key (`signed-by`, and `--keyring` so no host key counts),
Recommends off, the `file-mirror-automount` hook (the snapshot is bind-mounted read-only into the
chroot while packages install) and `SOURCE_DATE_EPOCH` = the snapshot's time. mmdebstrap's `I:`
lines are reported as progress; on failure its last lines are the error.

`scratch` is a temporary directory under `data_dir/tmp` that is removed whatever happens, but
never across a mount point: anything still mounted below it (a killed mmdebstrap's /proc, /dev or
the bind-mounted mirror) is unmounted first, so removing the scratch can never reach the
mirror's files or the host's.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from dgxie.errors import Unavailable

Report = Callable[[str, str], None]  # (phase, message)
AUTOMOUNT = "/usr/share/mmdebstrap/hooks/file-mirror-automount"


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first (from /proc/self/mountinfo)."""
    base = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == base or mp.startswith(base + "/"):
                out.append(mp)
    return sorted(out, key=len, reverse=True)


def remove_tree(path: Path) -> None:
    """Remove `path` after unmounting whatever is mounted below it; refuse (raise) if a mount
    cannot be undone, rather than delete through it."""
    if not path.exists():
        return
    for mp in _mounts_under(path):
        subprocess.run(["umount", "--lazy", mp], capture_output=True, timeout=60, check=False)
    if left := _mounts_under(path):
        raise RuntimeError(f"{left[0]} is still mounted; not removing {path}")
    shutil.rmtree(path)


@contextmanager
def scratch(data_dir: Path, prefix: str) -> Iterator[Path]:
    """A fresh directory under `data_dir/tmp` (0700), removed on exit (`remove_tree`)."""
    base = data_dir / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield tmp
    finally:
        remove_tree(tmp)


def run_logged(cmd: Sequence[str], *, phase: str, report: Report, env: dict[str, str] | None = None,
               show: Callable[[str], str | None] = lambda line: None, what: str) -> None:
    """Run `cmd`, its stdout and stderr merged and read line by line; `show(line)` picks what is
    reported. A non-zero exit raises Unavailable with `what` and the output's last lines."""
    tail: deque[str] = deque(maxlen=12)
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                            errors="replace", stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            line = raw.rstrip()
            if line:
                tail.append(line)
                if (msg := show(line)) is not None:
                    report(phase, msg)
        rc = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if rc != 0:
        last = " | ".join(list(tail)[-4:])
        raise Unavailable(f"{what} failed (exit {rc}): {last}"[:600])


def _summary(line: str) -> str | None:
    """mmdebstrap's own progress lines (`I: ...`), minus the noisy per-hook ones."""
    if line.startswith("I: ") and "running --" not in line:
        return line[3:]
    if line.startswith(("E: ", "W: ")):
        return line
    return None


def bootstrap(*, target: Path, suite: str, source_line: str, keyring: Path, variant: str, packages: Sequence[str],
              dpkgopt: Sequence[str] = (), hooks: Sequence[Path] = (), env: dict[str, str] | None = None,
              epoch: int, report: Report) -> None:
    """Bootstrap `suite` into the new directory `target` with mmdebstrap (see the module doc).
    `hooks` run in order as customize hooks (`sh HOOK "$1"`) with `env` added to theirs."""
    if shutil.which("mmdebstrap") is None:
        raise Unavailable("mmdebstrap is not installed (apt-get install mmdebstrap)")
    cmd = ["mmdebstrap", f"--variant={variant}", "--mode=root", "--format=directory", "--architectures=amd64",
           f"--keyring={keyring}", "--aptopt=APT::Install-Recommends \"false\"",
           "--aptopt=APT::Sandbox::User \"root\"", "--aptopt=Acquire::Languages \"none\"",
           f"--hook-dir={AUTOMOUNT}"]
    cmd += [f"--dpkgopt={o}" for o in dpkgopt]
    if packages:
        cmd.append("--include=" + ",".join(packages))
    cmd += [f"--customize-hook=sh {shlex.quote(str(h))} \"$1\"" for h in hooks]
    cmd += [suite, str(target), source_line]
    full_env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), **(env or {}))
    full_env.pop("TMPDIR", None)
    run_logged(cmd, phase="bootstrap", report=report, env=full_env, show=_summary, what="mmdebstrap")
