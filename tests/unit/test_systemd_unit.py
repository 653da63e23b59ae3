"""deploy/systemd stays true: `systemd-analyze verify` accepts dgxie.service without a warning (no
booted systemd needed; the program path is pointed at this venv's `dgxie`), the hardening keys are
there, the paths it uses are the config's defaults and the doc's, the sysusers/tmpfiles files
create what the unit runs as, and every `dgxie` command in docs/deploy-systemd.md and in the unit
exists with its options."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dgxie.cli import app
from dgxie.config import Settings
from tests.support.paths import REPO

UNITS = REPO / "deploy" / "systemd"
UNIT_TEXT = (UNITS / "dgxie.service").read_text()
DOC = (REPO / "docs" / "deploy-systemd.md").read_text()
PROGRAM = "/opt/dgxie/bin/dgxie"


def unit() -> dict[str, list[str]]:
    """`Key` -> its values in [Service] (systemd units repeat keys; configparser would not)."""
    service = UNIT_TEXT.split("[Service]", 1)[1].split("\n[", 1)[0]
    keys: dict[str, list[str]] = {}
    for line in service.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze")
    dgxie = Path(sys.executable).parent / "dgxie"
    assert dgxie.exists(), dgxie
    (tmp_path / "dgxie.service").write_text(UNIT_TEXT.replace(PROGRAM, str(dgxie)))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "dgxie.service")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


def test_the_hardening_keys() -> None:
    u = unit()
    expected = {
        "Type": "exec", "User": "dgxie", "DynamicUser": "no", "StateDirectory": "dgxie",
        "ConfigurationDirectory": "dgxie", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "NoNewPrivileges": "yes", "SystemCallFilter": "@system-service",
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE CAP_NET_RAW",
        "AmbientCapabilities": "CAP_NET_BIND_SERVICE CAP_NET_RAW",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "ExecStartPre": f"{PROGRAM} db upgrade", "ExecStart": f"{PROGRAM} serve",
    }
    assert {k: u.get(k, ["<missing>"])[-1] for k in expected} == expected
    assert "DGXIE_CONFIG=/etc/dgxie/dgxie.yaml" in u["Environment"]


def test_what_the_unit_names_is_documented_and_is_the_configs_default() -> None:
    assert Settings(database_url="sqlite:///:memory:").data_dir == Path("/var/lib/dgxie")  # StateDirectory=dgxie
    named = set(re.findall(r"(?<![\w/])/(?:etc|var|opt|usr)/[\w./-]+\w", UNIT_TEXT))
    named |= set(re.findall(r"\bCAP_[A-Z_]+|\bAF_[A-Z0-9]+", UNIT_TEXT))
    assert {"/etc/dgxie/dgxie.yaml", "/var/lib/dgxie", PROGRAM, "CAP_NET_RAW"} <= named
    missing = sorted(n for n in named if n not in DOC)
    assert not missing, missing


def test_sysusers_and_tmpfiles_make_the_user_and_the_directories(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not (shutil.which("systemd-sysusers") and shutil.which("systemd-tmpfiles")):
        pytest.skip("needs root and systemd-sysusers/systemd-tmpfiles")
    (tmp_path / "etc").mkdir()
    for cmd in (["systemd-sysusers", f"--root={tmp_path}", str(UNITS / "dgxie.sysusers")],
                ["systemd-tmpfiles", f"--root={tmp_path}", "--create", str(UNITS / "dgxie.tmpfiles")]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text()
    assert re.search(r"^dgxie:x:\d+:\d+:[^:]*:/var/lib/dgxie:/usr/sbin/nologin$", passwd, re.M), passwd
    assert (tmp_path / "var" / "lib" / "dgxie").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "etc" / "dgxie").stat().st_mode & 0o777 == 0o750


def dgxie_commands() -> list[list[str]]:
    """Every `dgxie ...` call in the doc's code blocks (after `sudo -u dgxie env VAR=...`, say) and
    the unit's Exec lines, as argv after the program."""
    lines = [line for block in re.findall(r"```[a-z]*\n(.*?)```", DOC, flags=re.S) for line in block.splitlines()]
    lines += [v for k in ("ExecStartPre", "ExecStart") for v in unit()[k]]
    out = []
    for line in lines:
        words = shlex.split(line.split(" #", 1)[0].split("&&", 1)[0])
        while words and (words[0] in ("sudo", "env") or "=" in words[0]):  # sudo -u dgxie env VAR=... dgxie
            words = words[3:] if words[:2] == ["sudo", "-u"] else words[1:]
        if words and (words[0] == "dgxie" or words[0].endswith("/bin/dgxie")):
            out.append(words[1:])
    return out


def test_every_dgxie_command_exists_with_its_options() -> None:
    runner = CliRunner()
    cmds = dgxie_commands()
    assert ["db", "upgrade"] in cmds and ["serve"] in cmds and len(cmds) >= 5, cmds
    assert ["token", "create", "--role", "admin", "--name", "admin"] in cmds, cmds
    for argv in cmds:
        path: list[str] = []
        for w in (w for w in argv if not w.startswith("-")):
            if path and "Commands" not in runner.invoke(app, [*path, "--help"]).output:
                break
            assert runner.invoke(app, [*path, w, "--help"]).exit_code == 0, f"no command dgxie {' '.join([*path, w])}"
            path.append(w)
        help_text = runner.invoke(app, [*path, "--help"]).output
        for opt in (w.split("=", 1)[0] for w in argv if w.startswith("--")):
            assert opt in help_text, f"dgxie {' '.join(argv)}: {opt} is not an option of dgxie {' '.join(path)}"


def test_the_config_excerpt_loads() -> None:
    block = next(b for b in re.findall(r"```[a-z]*\n(.*?)```", DOC, flags=re.S) if "dgxie.yaml <<'YAML'" in b)
    data = yaml.safe_load(block.split("<<'YAML'\n", 1)[1].split("\nYAML", 1)[0])
    settings = Settings(**data, database_url="sqlite:///:memory:")
    assert settings.dhcp.enabled and settings.tftp.enabled
