"""`dgxie db upgrade`."""

from __future__ import annotations

import sys

import typer

from dgxie import db
from dgxie.cli.common import err_console, settings
from dgxie.filemodes import loosened, private_dir

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Migrate the database to the newest schema (Alembic heads)."""
    s = settings()
    private_dir(s.data_dir)
    db.upgrade(s.database_url)
    err_console.print(f"database at head: {s.database_url.split('@')[-1]}")
    for line in loosened(s.data_dir, s.database_url):
        print(f"dgxie: warning: {line}", file=sys.stderr)
