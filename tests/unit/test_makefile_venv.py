"""The Makefile's venv stamps: `make run` installs the package without the dev extra, `make test`
with it; run-then-test adds the dev tools, test-then-run installs nothing more. Runs the real
Makefile in a scratch directory with a stand-in `.venv/bin/python` that only logs its arguments
(a fake: the point is what make asks pip for, not pip itself)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO

FAKE_PYTHON = '#!/bin/sh\necho "$*" >> "$(dirname "$0")/../../pip.log"\n'


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("no make")
    shutil.copy(REPO / "Makefile", tmp_path)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


def installs(scratch: Path, *targets: str) -> list[str]:
    """The `pip install -e` arguments make ran for `targets`, one make call each, in order."""
    log = scratch / "pip.log"
    log.unlink(missing_ok=True)
    for target in targets:
        subprocess.run(["make", "-s", target], cwd=scratch, check=True, capture_output=True, timeout=60)
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.rsplit(" ", 1)[1] for line in lines if " -e " in line]


def test_run_installs_without_the_dev_extra_and_test_then_adds_it(scratch: Path) -> None:
    assert installs(scratch, "venv-run") == ["."]
    assert installs(scratch, "venv-run") == []  # stamped
    assert installs(scratch, "venv") == [".[dev]"]
    assert installs(scratch, "venv", "venv-run") == []


def test_a_test_venv_serves_run_as_it_is(scratch: Path) -> None:
    assert installs(scratch, "venv", "venv-run") == [".[dev]"]


def test_a_changed_pyproject_reinstalls(scratch: Path) -> None:
    installs(scratch, "venv")
    with (scratch / "pyproject.toml").open("a") as f:
        f.write("\n# changed\n")
    assert installs(scratch, "venv-run") == ["."]


def test_make_run_and_make_test_use_their_own_venv_target() -> None:
    text = (REPO / "Makefile").read_text()
    assert "\nrun: venv-run\n" in text
    assert "\ntest: venv deps lint\n" in text and "\nlint: venv\n" in text
