"""Every `dgxie` command, option and argument explains itself; `--config` and shell completion are
visible in `dgxie --help`, which does not import the API app."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import typer

from dgxie.cli import app
from tests.support.paths import REPO


def _walk(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    """Every command, the lazily imported ones loaded (cli/lazy.py)."""
    yield path, cmd
    if hasattr(cmd, "list_commands"):
        ctx = typer.Context(cmd)
        for name in cmd.list_commands(ctx):
            yield from _walk(cmd.get_command(ctx, name), [*path, name])


def _first_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n")[0].split())


def test_lazy_commands_help_lines_are_their_own() -> None:
    """The one line a group's --help shows for a command it has not imported is the line the
    command itself starts its help with, so the table in cli/__init__.py cannot drift."""
    root = typer.main.get_command(app)
    checked = 0
    for path, cmd in _walk(root, ["dgxie"]):
        table = getattr(cmd, "lazy", {})
        ctx = typer.Context(cmd)
        for name, spec in table.items():
            assert _first_paragraph(cmd.get_command(ctx, name).help) == spec.help, " ".join([*path, name])
            checked += 1
    assert checked >= 20


def test_every_command_option_and_argument_has_help() -> None:
    missing = []
    commands = list(_walk(typer.main.get_command(app), ["dgxie"]))
    assert len(commands) > 60
    for path, cmd in commands:
        if not (cmd.help or cmd.short_help):
            missing.append(" ".join(path))
        missing.extend(f"{' '.join(path)} {p.opts[0] if p.opts else p.name}" for p in cmd.params
                       if not getattr(p, "help", None))
    assert not missing, "no help text: " + "; ".join(missing)


def _dgxie(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DGXIE_")}
    return subprocess.run([sys.executable, "-c", "import sys; from dgxie.cli import main; main()", *args],
                          cwd=REPO, env=base | {"PYTHONPATH": str(REPO)} | (env or {}), capture_output=True,
                          text=True, timeout=60, check=False)


def test_top_level_help_shows_config_and_completion_without_importing_the_app() -> None:
    code = ("import sys\nfrom dgxie.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('APP-LOADED' if 'dgxie.app' in sys.modules else 'APP-NOT-LOADED')")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO),
                       "COLUMNS": "200"}, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert "--config" in r.stdout and "--install-completion" in r.stdout and "--show-completion" in r.stdout
    assert r.stdout.strip().endswith("APP-NOT-LOADED"), r.stdout[-300:]
    for name in ("serve", "node", "firmware", "mirror-oci", "render", "completion"):  # listed, from the table
        assert f"\n  {name} " in r.stdout, name


def test_top_level_help_imports_no_command_module_and_no_database_layer() -> None:
    code = ("import sys\nfrom dgxie.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.endswith('_cmd') or m.startswith(('sqlalchemy', 'fastapi'))))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)},
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout[-500:]


def test_shell_completion_script_and_completions() -> None:
    for shell, needle in (("bash", "_DGXIE_COMPLETE=complete_bash"), ("zsh", "_DGXIE_COMPLETE=complete_zsh"),
                          ("fish", "_DGXIE_COMPLETE=complete_fish")):
        r = _dgxie("completion", shell)
        assert r.returncode == 0 and needle in r.stdout, (shell, r.stdout, r.stderr)
    r = _dgxie("completion", "tcsh")
    assert r.returncode == 1 and r.stderr == "dgxie: error: unknown shell 'tcsh' (known: bash, zsh, fish)\n"
    r = _dgxie(env={"_DGXIE_COMPLETE": "complete_bash", "COMP_WORDS": "dgxie pro", "COMP_CWORD": "1"})
    assert r.returncode == 0 and r.stdout.split() == ["profile"], (r.stdout, r.stderr)
    r = _dgxie(env={"_DGXIE_COMPLETE": "complete_bash", "COMP_WORDS": "dgxie node li", "COMP_CWORD": "2"})
    assert r.stdout.split() == ["list"], (r.stdout, r.stderr)
