"""scripts/dgxie-inventory under a clean PATH: it finds dgxie in the repository's .venv (or says it cannot,
on stderr with exit 1, which ansible-inventory shows and, with unparsed_is_failed, fails on)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from dgxie.boot.state import State
from dgxie.context import Context
from tests.support.handoff import add_node
from tests.support.paths import REPO
from tests.support.serve import served

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


def test_script_over_http_with_a_viewer_token_that_no_command_line_shows(sqlite_url: str, tmp_path: Path) -> None:
    """With DGXIE_URL the script asks a running `dgxie serve` (any host reaching its API) with curl;
    the token comes from a file through curl's stdin, so `ps` never shows it."""
    with served(tmp_path, sqlite_url, roles={"slurmd": {"groups": ["slurm-node"]}}) as srv:
        for i, hyphen in ((1, "gpu01"), (2, "gpu02")):
            r = httpx.post(f"{srv.url}/api/v1/nodes", headers=srv.auth, json={
                "hostname": hyphen, "mac": f"02:00:00:00:00:0{i}", "ip": f"10.0.0.{i}", "role": "slurmd"})
            assert r.status_code == 201, r.text
        viewer = httpx.post(f"{srv.url}/api/v1/tokens", headers=srv.auth, json={"name": "ansible", "role": "viewer"})
        token_file = tmp_path / "token"
        token_file.write_text(viewer.json()["token"] + "\n")
        token_file.chmod(0o600)
        script = _layout(tmp_path / "checkout", with_venv=False)  # no dgxie at all: HTTP only
        env = {"DGXIE_URL": srv.url, "DGXIE_TOKEN_FILE": str(token_file), "DGXIE_INVENTORY_ARGS": "--all"}
        alone = subprocess.run([str(script), "--list"], env=_env(**env), capture_output=True, text=True, timeout=30,
                               check=False)
        assert alone.returncode == 0, alone.stderr
        listed = json.loads(alone.stdout)
        assert sorted(listed["_meta"]["hostvars"]) == ["gpu01", "gpu02"]
        assert listed["_meta"]["hostvars"]["gpu01"]["ansible_host"] == "10.0.0.1"
        r = _inventory(script, "--graph", **env)
        assert r.returncode == 0 and "gpu02" in r.stdout, (r.stdout, r.stderr)
        bad = tmp_path / "bad"
        bad.write_text("dgxie_wrong\n")
        r = subprocess.run([str(script), "--list"], env=_env(**(env | {"DGXIE_TOKEN_FILE": str(bad)})),
                           capture_output=True, text=True, timeout=30, check=False)
        assert r.returncode != 0 and r.stdout == "" and "401" in r.stderr, r.stderr
        r = subprocess.run([str(script), "--list"], env=_env(DGXIE_URL=srv.url), capture_output=True, text=True,
                           timeout=30, check=False)
        assert r.returncode == 1 and r.stderr.startswith("dgxie-inventory: DGXIE_URL is set but DGXIE_TOKEN_FILE")
