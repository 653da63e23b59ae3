"""docs/boot-storm.md stays true: every `make` command in it names a Makefile target and only
variables that target passes on, and the simulator's options it names exist (fast, no root)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.paths import REPO

DOC = (REPO / "docs" / "boot-storm.md").read_text()
MAKEFILE = (REPO / "Makefile").read_text()


def test_make_commands_in_the_doc_exist() -> None:
    commands = re.findall(r"^\$ sudo make (\S+)((?: [A-Z_]+=\S+)*)", DOC, re.M)
    assert len(commands) >= 4, commands
    for target, assigns in commands:
        assert re.search(rf"^{re.escape(target)}:", MAKEFILE, re.M), target
        for var in re.findall(r"([A-Z_]+)=", assigns):
            assert f"$({var})" in MAKEFILE, (target, var)


def test_the_make_target_runs_the_simulator_with_options_it_has() -> None:
    out = subprocess.run([sys.executable, str(REPO / "bench/storm/run.py"), "--help"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    recipe = MAKEFILE.split("\nbench-storm:", 1)[1].split("\n\n", 1)[0]
    for opt in re.findall(r"(--[a-z-]+)", recipe):
        assert opt in out, opt
    for opt in ("--nodes", "--waves", "--kernel-mib", "--initrd-mib", "--stacks"):
        assert opt in out
