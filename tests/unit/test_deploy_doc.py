"""docs/deploy.md stays true: every `dgxie ...` command it shows exists with the options it uses,
and its config excerpt loads (the e2e test, tests/e2e/test_deploy_vm.py, runs the same sequence)."""

from __future__ import annotations

import re
import shlex

import yaml
from typer.testing import CliRunner

from dgxie.cli import app
from dgxie.config import Settings
from tests.support.paths import REPO

DOC = (REPO / "docs" / "deploy.md").read_text()


def _blocks() -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", DOC, flags=re.S)


def _commands() -> list[list[str]]:
    out = []
    for block in _blocks():
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("dgxie "):
                out.append(shlex.split(re.sub(r"\[([^]]*)\]", r"\1", line)))
    return out


def test_every_command_in_the_walkthrough_exists_with_its_options() -> None:
    runner = CliRunner()
    cmds = _commands()
    assert len(cmds) >= 10, cmds
    for argv in cmds:
        words = [w for w in argv[1:] if not w.startswith("-")]
        path: list[str] = []
        for w in words:  # the command path: groups down to the command; what follows are arguments
            if path and "Commands" not in runner.invoke(app, [*path, "--help"]).output:
                break
            r = runner.invoke(app, [*path, w, "--help"])
            assert r.exit_code == 0, f"{' '.join(argv)}: no command dgxie {' '.join([*path, w])}"
            path.append(w)
        help_text = runner.invoke(app, [*path, "--help"]).output
        assert path and "Usage:" in help_text, (argv, help_text[-500:])
        for opt in (w.split("=", 1)[0] for w in argv if w.startswith("--")):
            assert opt in help_text, f"{' '.join(argv)}: {opt} is not an option of dgxie {' '.join(path)}"


def test_the_config_excerpt_loads() -> None:
    block = next(b for b in _blocks() if "cat > \"$DGXIE_CONFIG\"" in b)
    text = block.split("<<'YAML'\n", 1)[1].split("\nYAML", 1)[0]
    data = yaml.safe_load(text.replace(", ...]", "]"))
    settings = Settings(**data, database_url="sqlite:///:memory:")
    assert settings.profiles["gpu-node"].template == "image/deploy"
    assert settings.dhcp.discovery is True
