"""How the CLI prints tables and records: for a person at a terminal, for a script otherwise.

Contract:
- An identifier (a cell without whitespace: MAC, hostname, IP, component name, version, serial) is never
  cut. At a terminal, free-text columns wrap; when even that does not fit the width, columns are
  hidden (those named by `hide_first`, then free text, from the right) and the caption says which, and
  that `-o json` shows them.
- When stdout is not a terminal, a table is printed as tab-separated lines (a header, then one line per
  row) with every value in full; the caption goes to stderr.
- `render_record` prints a record (`node show`, `profile show`) as `key: value` lines: None is `-`,
  lists are comma-separated, mappings are indented `key: value` lines.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable
from typing import Any

import typer
from rich.console import Console
from rich.errors import MarkupError
from rich.table import Table
from rich.text import Text


class Format(enum.StrEnum):
    table = "table"
    json = "json"


def output_option() -> Any:
    """The `-o/--output table|json` option shared by list and show commands."""
    return typer.Option(Format.table, "--output", "-o", help="table (for people) or json (for scripts)",
                        case_sensitive=False)


def json_option() -> Any:
    """The older `--json` flag, kept: the same as `-o json`."""
    return typer.Option(False, "--json", help="print JSON (the same as -o json)")


def wants_json(output: Format, as_json: bool) -> bool:
    return as_json or output == Format.json


def _plain(cell: Any) -> str:
    if isinstance(cell, Text):
        return cell.plain
    text = str(cell)
    try:
        return Text.from_markup(text).plain
    except MarkupError:
        return text


def _is_identifier(values: Iterable[str]) -> bool:
    return all(not any(ch.isspace() for ch in v) for v in values)


def _tsv(value: str) -> str:
    return value.replace("\t", " ").replace("\n", " ")


def print_tsv(table: Table, out: Any = None, err: Any = None) -> None:
    """Print TABLE as tab-separated lines, values in full; its caption (if any) on stderr."""
    out = out or sys.stdout
    cols = table.columns
    if table.show_header:
        out.write("\t".join(_tsv(_plain(c.header)) for c in cols) + "\n")
    cells = [[_plain(x) for x in c._cells] for c in cols]
    for row in zip(*cells, strict=True):
        out.write("\t".join(_tsv(v) for v in row) + "\n")
    if table.caption:
        (err or sys.stderr).write(_plain(table.caption) + "\n")


_FREE_TEXT_MIN = 12


def fit_table(table: Table, width: int) -> Table:
    """Make TABLE fit WIDTH columns without cutting an identifier: identifiers never wrap and keep their
    full width; free text folds; columns are hidden from the right (free text first) when needed."""
    info = []
    for i, col in enumerate(table.columns):
        values = [_plain(x) for x in col._cells]
        header = _plain(col.header)
        longest = max([len(v) for v in values] + [len(header)])
        ident = _is_identifier(values)
        need = longest if ident else min(longest, max(_FREE_TEXT_MIN, len(header)))
        col.overflow = "fold"
        if ident:
            col.no_wrap = True
            col.min_width = longest
        info.append((i, ident, need, header))
    edge = 1 if table.box is not None and table.show_edge else 0
    sep = 1 if table.box is not None else 0

    def total(kept: list[tuple[int, bool, int, str]]) -> int:
        pad = table.padding[1] + table.padding[3]
        return sum(n + pad for _, _, n, _ in kept) + sep * max(len(kept) - 1, 0) + 2 * edge

    kept = list(info)
    hidden: list[str] = []
    first: tuple[str, ...] = getattr(table, "hide_first", ())
    while total(kept) > width and len(kept) > 1:
        named = [k for name in first for k in kept[1:] if k[3] == name]
        candidates = [k for k in kept[1:] if not k[1]] or kept[1:]
        drop = named[0] if named else candidates[-1]
        kept.remove(drop)
        hidden.insert(0, drop[3])
    if hidden:
        keep = {i for i, *_ in kept}
        table.columns[:] = [c for i, c in enumerate(table.columns) if i in keep]
        note = f"hidden at this width: {', '.join(hidden)} (-o json shows everything)"
        table.caption = f"{_plain(table.caption)}; {note}" if table.caption else note
    return table


def hide_first(table: Table, *headers: str) -> Table:
    """Name the columns `fit_table` hides first (in this order) when TABLE is too wide; then free
    text from the right, then identifiers from the right."""
    table.hide_first = headers  # type: ignore[attr-defined]
    return table


class TableConsole(Console):
    """A rich Console whose `print(table)` follows this module's contract. Any other print is a
    message printed as it is: never wrapped by rich (a path or URL stays on one line, piped or
    not: the terminal wraps), no markup, emoji or highlighting taken from its text (a MAC like
    `54:ab:3a:..` is not an emoji code, `[x]` not a style)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("emoji", False)
        kwargs.setdefault("highlight", False)
        super().__init__(*args, **kwargs)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if len(objects) == 1 and isinstance(objects[0], Table):
            table = objects[0]
            if not self.is_terminal:
                print_tsv(table, out=self.file)
                return
            fit_table(table, self.width)
        else:
            kwargs.setdefault("soft_wrap", True)
            kwargs.setdefault("markup", False)
        super().print(*objects, **kwargs)


def human(value: Any) -> str:
    """One value as a person reads it: None -> '-', True -> 'yes', lists comma-separated."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(human(v) if not isinstance(v, dict) else _inline(v) for v in value)
    if isinstance(value, dict):
        return _inline(value)
    return str(value)


def _inline(d: dict[str, Any]) -> str:
    return " ".join(f"{k}={human(v)}" for k, v in d.items())


def record_lines(data: dict[str, Any], indent: int = 0) -> list[str]:
    """`key: value` lines; a non-empty mapping becomes `key:` followed by its own lines, indented."""
    width = max((len(k) for k in data), default=0) + 1
    out: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.append(f"{' ' * indent}{key}:")
            out.extend(record_lines(value, indent + 2))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.append(f"{' ' * indent}{key}:")
            out.extend(f"{' ' * (indent + 2)}- {_inline(v)}" for v in value)
        else:
            out.append(f"{' ' * indent}{f'{key}:':<{width}} {human(value)}")
    return out


def render_record(data: dict[str, Any]) -> None:
    sys.stdout.write("\n".join(record_lines(data)) + "\n")
