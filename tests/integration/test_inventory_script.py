"""scripts/dgxie-inventory under a clean PATH: it finds dgxie in the repository's .venv (or says it cannot,
on stderr with exit 1, which ansible-inventory shows and, with unparsed_is_failed, fails on)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from dgxie.boot.state import State
from dgxie.context import Context
from tests.support.handoff import add_node
from tests.support.paths import REPO

SCRIPT = REPO / "scripts" / "dgxie-inventory"
ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")
CLEAN_PATH = "/usr/bin:/bin"


def _layout(root: Path, with_venv: bool) -> Path:
    """A checkout's shape: ROOT/scripts/dgxie-inventory and, WITH_VENV, ROOT/.venv/bin/dgxie."""
    (root / "scripts").mkdir(parents=True)
    script = root / "scripts" / "dgxie-inventory"
    shutil.copy2(SCRIPT, script)
    if with_venv:
        (root / ".venv" / "bin").mkdir(parents=True)
        (root / ".venv" / "bin" / "dgxie").symlink_to(Path(sys.executable).parent / "dgxie")
    return script


def _env(**extra: str) -> dict[str, str]:
    keep = {k: os.environ[k] for k in ("HOME", "DGXIE_CONFIG", "DGXIE_TEST_PG") if k in os.environ}
    return keep | {"PATH": CLEAN_PATH, "PYTHONPATH": str(REPO)} | extra


def _inventory(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ANSIBLE_INVENTORY, "-i", str(script), *args], env=_env(**env), capture_output=True,
                          text=True, timeout=120, check=False)


def test_script_finds_dgxie_in_the_repository_venv(ctx: Context, config_file, tmp_path: Path) -> None:
    assert shutil.which("dgxie", path=CLEAN_PATH) is None
    add_node(ctx, "gpu01", 1, role="slurmd", state=State.READY)
    script = _layout(tmp_path / "checkout", with_venv=True)
    r = _inventory(script, "--graph", DGXIE_CONFIG=str(config_file()))
    assert r.returncode == 0, r.stderr
    assert "gpu01" in r.stdout and "Failed to parse" not in r.stderr, (r.stdout, r.stderr)


def test_script_without_dgxie_fails_loudly(tmp_path: Path) -> None:
    script = _layout(tmp_path / "elsewhere", with_venv=False)
    alone = subprocess.run([str(script), "--list"], env=_env(), capture_output=True, text=True, timeout=30,
                           check=False)
    assert alone.returncode == 1 and alone.stdout == ""
    assert alone.stderr.startswith("dgxie-inventory: cannot find dgxie") and alone.stderr.count("\n") == 1
    r = _inventory(script, "--graph")
    assert "dgxie-inventory: cannot find dgxie" in r.stderr, r.stderr
    strict = _inventory(script, "--graph", ANSIBLE_INVENTORY_UNPARSED_FAILED="true")
    assert strict.returncode != 0 and "cannot find dgxie" in strict.stderr
