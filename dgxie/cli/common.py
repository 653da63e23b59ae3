"""What every CLI command shares: the loaded config, the context, output helpers."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from dgxie import config, db
from dgxie.cli.output import TableConsole
from dgxie.compose import build_context
from dgxie.context import Context

console = TableConsole()  # tables: never cut an identifier; tab-separated when piped (see output.py)
err_console = TableConsole(stderr=True)

CONFIG_PATH: list[str | None] = [None]


def settings() -> config.Settings:
    return config.load(CONFIG_PATH[0])


@cache
def context() -> Context:
    return build_context(settings())


@contextmanager
def session() -> Iterator[Session]:
    with db.session_scope(context().sessions) as s:
        yield s


def actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}"


def dump_json(value: Any) -> None:
    """Print JSON to stdout (pydantic models and lists of them included)."""

    def conv(v: Any) -> Any:
        if isinstance(v, BaseModel):
            return v.model_dump(mode="json")
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    print(json.dumps(conv(value), indent=2, sort_keys=False))
