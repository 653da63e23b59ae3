"""`dgxie db upgrade`."""

from __future__ import annotations

import typer

from dgxie import db
from dgxie.cli.common import err_console, settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Migrate the database to the newest schema (Alembic heads)."""
    s = settings()
    db.upgrade(s.database_url)
    err_console.print(f"database at head: {s.database_url.split('@')[-1]}")
