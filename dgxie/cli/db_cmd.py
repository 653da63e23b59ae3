"""`dgxie db upgrade`."""

from __future__ import annotations

import os
import sys

import typer

from dgxie import db
from dgxie.cli.common import err_console, settings
from dgxie.config import CONFIG_ENV
from dgxie.filemodes import loosened, private_dir, secret_config

app = typer.Typer(help="Database schema.", no_args_is_help=True, rich_markup_mode=None)


@app.command("upgrade")
def upgrade() -> None:
    """Migrate the database to the newest schema (Alembic heads)."""
    s = settings()
    private_dir(s.data_dir)
    db.upgrade(s.database_url)
    err_console.print(f"database at head: {s.database_url.split('@')[-1]}")
    config = secret_config(os.environ.get(CONFIG_ENV), s.database_url, s.secret_key is not None)
    for line in loosened(s.data_dir, s.database_url, config):
        print(f"dgxie: warning: {line}", file=sys.stderr)
