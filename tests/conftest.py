"""Shared fixtures: a migrated database on SQLite *and* PostgreSQL, an app, a CLI runner.

Every test that asks for `db_url` (or anything built on it) runs twice: once on a fresh SQLite
file and once on the PostgreSQL at 127.0.0.1:5432 (a database of its own per test session,
emptied between tests). `sqlite_url` is for the slow end-to-end tests that need only one backend.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import text

from dgxie import db
from dgxie.app import create_app
from dgxie.compose import build_context
from dgxie.config import Settings
from dgxie.context import Context

PG_ADMIN = os.environ.get("DGXIE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dbtemplate") / "template.db"
    db.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    name = f"dgxie_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    db.upgrade(url)
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate(url: str) -> None:
    engine = db.make_engine(url)
    tables = [t.name for t in db.Base.metadata.sorted_tables]
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "dgxie.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url
    url = request.getfixturevalue("pg_database")
    _truncate(url)
    return url


def settings_for(db_url: str, data_dir: Path, **overrides: Any) -> Settings:
    return Settings(database_url=db_url, data_dir=data_dir, **overrides)


@pytest.fixture
def make_ctx(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Context]]:
    made: list[Context] = []

    def make(**overrides: Any) -> Context:
        ctx = build_context(settings_for(db_url, tmp_path / "data", **overrides), migrate=False)
        made.append(ctx)
        return ctx

    yield make
    for c in made:
        c.engine.dispose()


@pytest.fixture
def ctx(make_ctx: Callable[..., Context]) -> Context:
    return make_ctx()


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as c:
        yield c


def _token(ctx: Context, role: str) -> str:
    from dgxie import tokens

    with db.session_scope(ctx.sessions) as s:
        _, plain = tokens.create_token(s, name=f"t-{role}-{uuid.uuid4().hex[:6]}", role=role, actor="test")
    return plain


@pytest.fixture
def auth(ctx: Context) -> Callable[[str], dict[str, str]]:
    """`auth("admin")` -> headers with a fresh token of that role."""
    cache: dict[str, dict[str, str]] = {}

    def headers(role: str = "admin") -> dict[str, str]:
        if role not in cache:
            cache[role] = {"Authorization": f"Bearer {_token(ctx, role)}"}
        return cache[role]

    return headers


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def config_file(db_url: str, tmp_path: Path) -> Callable[..., Path]:
    """Write a config file for `db_url` (plus overrides) and return its path."""

    def write(**overrides: Any) -> Path:
        data = {"database_url": db_url, "data_dir": str(tmp_path / "data")} | overrides
        path = tmp_path / "dgxie.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


@pytest.fixture
def cli(config_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run `dgxie ARGS...` in-process against the test database; returns (code, stdout, stderr)."""
    from dgxie.cli import common, main

    cfg = config_file()
    monkeypatch.setenv("DGXIE_CONFIG", str(cfg))
    def run(*args: str) -> CliResult:
        common.CONFIG_PATH[0] = None
        common.reset()
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = int(exc.code or 0)
        common.reset()
        return CliResult(code, out.getvalue(), err.getvalue())

    yield run  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _no_stray_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("DGXIE_") and key != "DGXIE_TEST_PG":
            monkeypatch.delenv(key)


def python() -> str:
    return sys.executable
