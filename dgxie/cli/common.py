"""What every CLI command shares: the loaded config, the database, the site, output helpers.

Commands take only what they use, so a read such as `dgxie node list` costs a config load, one
schema-version query and its own query (issue 14: it was 2.8 s, most of it importing and wiring
the whole server and running Alembic on every command):
- `session()`: the database, checked once per process with `db.require_schema` (a database with
  no schema gets it; one at another revision is one error line), after naming loosened modes and
  refusing a secret key others can read, as `dgxie serve` does;
- `site()`: the `Site` services take (config, data directory, secret box), with the profiles
  the config declares synced into the database;
- `context()`: the whole wired `Context` (`compose.build_context`), for the few commands that
  need the script cache, the OCI reader or the reprovision hooks.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from dgxie import CONFIG_ENV
from dgxie.cli.output import TableConsole

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from dgxie.config import Settings
    from dgxie.context import Context
    from dgxie.site import Site

console = TableConsole()  # tables: never cut an identifier; tab-separated when piped (see output.py)
err_console = TableConsole(stderr=True)

CONFIG_PATH: list[str | None] = [None]


def settings() -> Settings:
    from dgxie import config  # here: `dgxie --help` needs no configuration

    return config.load(CONFIG_PATH[0])


@cache
def sessions() -> sessionmaker[Session]:
    """The database's session factory, after the one-query schema check (`db.require_schema`)."""
    from dgxie import db
    from dgxie.crypto import load_or_create_key
    from dgxie.filemodes import loosened, private_dir, secret_config

    s = settings()
    private_dir(s.data_dir)
    for line in loosened(s.data_dir, s.database_url,  # before opening it: SQLite's -wal/-shm take its mode
                         secret_config(os.environ.get(CONFIG_ENV), s.database_url, s.secret_key is not None)):
        print(f"dgxie: warning: {line}", file=sys.stderr)
    load_or_create_key(s.data_dir, s.secret_key.get_secret_value() if s.secret_key else None)  # a loose key: refused
    engine = db.make_engine(s.database_url)
    db.require_schema(s.database_url, engine)
    return db.session_factory(engine)


@cache
def site() -> Site:
    """The site (config + data directory + secret box), config-declared profiles synced."""
    from dgxie.compose.site import build_site

    s = settings()
    built = build_site(s)
    if s.profiles:
        from dgxie.catalog.profiles import sync_config_profiles

        with session() as db_session:
            sync_config_profiles(db_session, built)
    return built


@cache
def context() -> Context:
    """Everything `dgxie serve` is wired with but its servers (compose/root.py)."""
    from dgxie.compose import build_context

    sessions()  # the schema check; build_context does not migrate for the CLI
    return build_context(settings(), migrate=False, check_modes=False)


def reset() -> None:
    """Forget this process's database, site and context (in-process callers: tests; each CLI run
    is otherwise its own process), disposing of the engines they made."""
    if sessions.cache_info().currsize:
        engine = sessions().kw.get("bind")
        if engine is not None:
            engine.dispose()
    if context.cache_info().currsize:
        context().engine.dispose()
    for cached in (sessions, site, context):
        cached.cache_clear()


@contextmanager
def session() -> Iterator[Session]:
    from dgxie import db

    with db.session_scope(sessions()) as s:
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
