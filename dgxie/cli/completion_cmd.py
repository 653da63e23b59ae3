"""`dgxie completion SHELL`: print the shell completion script (the same as `--show-completion`, but
for a named shell, so it works where the calling shell cannot be detected: CI, Dockerfiles)."""

from __future__ import annotations

import typer
from typer._completion_shared import get_completion_script

from dgxie.errors import Invalid

SHELLS = ("bash", "zsh", "fish")


def completion(shell: str = typer.Argument(..., help="bash, zsh or fish")) -> None:
    """Print SHELL's completion script, e.g. `dgxie completion bash > /etc/bash_completion.d/dgxie`."""
    if shell not in SHELLS:
        raise Invalid(f"unknown shell {shell!r} (known: {', '.join(SHELLS)})")
    print(get_completion_script(prog_name="dgxie", complete_var="_DGXIE_COMPLETE", shell=shell))
