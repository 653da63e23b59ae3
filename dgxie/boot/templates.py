"""The one Jinja2 environment and the one templates-directory resolver.

Every template dgxie renders (iPXE scripts, install configs, bootstrap scripts) goes through
`environment(override)`: StrictUndefined (a missing variable is an error, never an empty string),
no autoescape (the outputs are shell, YAML, debconf and iPXE, not HTML), `trim_blocks` and
`lstrip_blocks` (a `{% ... %}` line leaves no blank line behind), the trailing newline kept.

Filters and globals every template may use:
    yaml     a safely quoted YAML scalar or flow value (JSON is YAML)
    sh       a shell word (`shlex.quote`); `shquote` is the same filter
    b64      base64 of the value's text
    fail(m)  stop rendering with message `m`

Lookup is file by file: a site's override directory (config `handoff.templates_dir`) first, then
the templates shipped with dgxie (`dgxie.resources.templates()`), so an operator copies and edits
one file only; `find` says which file a name resolves to (`dgxie render --explain` prints it).
One environment per override directory (cached); a template edited on disk is picked up at its next
use (Jinja2 `auto_reload`, one stat per render).
"""

from __future__ import annotations

import base64
import json
import shlex
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import jinja2
from jinja2 import meta

from dgxie import resources


def _fail(message: str) -> NoReturn:
    raise jinja2.TemplateRuntimeError(message)


def _yaml(value: Any) -> str:
    """JSON is YAML: a safely quoted scalar or flow value (an undefined variable stays an error)."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return json.dumps(value)


def _sh(value: Any) -> str:
    return shlex.quote(str(value))


def search_path(override: Path | None = None) -> tuple[Path, ...]:
    """The directories searched, in order: the site's override (if any), then the shipped ones."""
    shipped = resources.templates()
    return (override, shipped) if override is not None and override != shipped else (shipped,)


def find(name: str, override: Path | None = None) -> Path | None:
    """The file that `name` resolves to (for `--explain` and start-up checks), or None."""
    for root in search_path(override):
        if (root / name).is_file():
            return root / name
    return None


@cache
def environment(override: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(p) for p in search_path(override)]),
                             undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["yaml"] = _yaml
    env.filters["sh"] = env.filters["shquote"] = _sh
    env.filters["b64"] = lambda v: base64.b64encode(str(v).encode()).decode()
    env.globals["fail"] = _fail
    return env


def referenced(name: str, override: Path | None = None) -> frozenset[str]:
    """The variables template `name` and the templates it includes read from their context (what
    `dgxie.boot.validate.check_line_values` checks before a line-based config is rendered)."""
    env = environment(override)
    seen: set[str] = set()
    out: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        assert env.loader is not None
        source, _, _ = env.loader.get_source(env, current)
        ast = env.parse(source)
        out |= meta.find_undeclared_variables(ast)
        todo.extend(t for t in meta.find_referenced_templates(ast) if t is not None)
    return frozenset(out - set(env.globals))


def closure(name: str, override: Path | None = None) -> tuple[str, ...] | None:
    """`name` and every template it includes, transitively (what a render of `name` loads), or
    None when an include names its template through a variable (it cannot be known in advance)."""
    env = environment(override)
    assert env.loader is not None
    seen: list[str] = []
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        source, _, _ = env.loader.get_source(env, current)
        for ref in meta.find_referenced_templates(env.parse(source)):
            if ref is None:
                return None
            todo.append(ref)
    return tuple(seen)


def relative_name(filename: str | None, override: Path | None = None) -> str | None:
    """A template file's name relative to the directory it was found in (for error messages)."""
    if not filename:
        return None
    for root in search_path(override):
        try:
            return str(Path(filename).relative_to(root))
        except ValueError:
            continue
    return None
