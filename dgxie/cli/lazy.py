"""Command groups whose subcommands are imported only when they run (issue 14: `dgxie --help` in
under 0.3 s; it was 2.5 s because every command module, and through them SQLAlchemy, the
services and the FastAPI app, was imported to print one screen).

A `LazyGroup` names its subcommands in a table, `name -> Lazy(module, attribute, help)`, and
imports `module` only when that subcommand is resolved to run, complete or print its own help.
The group's own help lists them from the table's one-line help without importing anything;
`tests/unit/test_cli_help.py` checks each line is the loaded command's own first help line, so
the table cannot drift from the code.

`attribute` is a `typer.Typer` (a subgroup) or a command function (a single command).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer import _click as click  # typer 0.29 vendors click; its classes, not the click package's
from typer.core import TyperCommand, TyperGroup

from dgxie.cli.gcpause import gc_paused


@dataclass(frozen=True)
class Lazy:
    module: str
    attribute: str
    help: str  # the one line `--help` of the parent group shows
    own_help: bool = False  # a command function whose help is `help`, not its docstring


def load(name: str, spec: Lazy) -> click.Command:
    """The click command `spec` names, built the way typer builds an eagerly registered one."""
    with gc_paused():  # imports: objects that live to the end (cli/gcpause.py)
        target = getattr(importlib.import_module(spec.module), spec.attribute)
    cmd: click.Command
    if isinstance(target, typer.Typer):
        cmd = typer.main.get_group(target)
    else:
        single = typer.Typer(rich_markup_mode=None)
        single.command(name, help=spec.help if spec.own_help else None)(target)
        cmd = typer.main.get_command(single)
    cmd.name = name
    return cmd


class LazyGroup(TyperGroup):
    """A typer group with subcommands from `lazy` (set by a subclass) after its eager ones."""

    lazy: ClassVar[Mapping[str, Lazy]] = {}
    _formatting = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = super().list_commands(ctx)
        return eager + [n for n in self.lazy if n not in eager]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        spec = self.lazy[cmd_name]
        if self._formatting:  # listing in our own --help: the table's line, nothing imported
            return TyperCommand(name=cmd_name, help=spec.help, short_help=spec.help)
        cmd = load(cmd_name, spec)
        self.commands[cmd_name] = cmd
        return cmd

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._formatting = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._formatting = False


def group(table: Mapping[str, Lazy]) -> type[LazyGroup]:
    """A `LazyGroup` class for `typer.Typer(cls=...)` with `table` as its lazy subcommands."""
    attrs: dict[str, Any] = {"lazy": dict(table)}
    return type("LazyGroup", (LazyGroup,), attrs)
