"""`dgxie token create|list|revoke`."""

from __future__ import annotations

import typer
from rich.table import Table

from dgxie import tokens
from dgxie.cli.common import actor, console, dump_json, err_console, session
from dgxie.cli.output import Format, json_option, output_option, wants_json

app = typer.Typer(help="API tokens.", no_args_is_help=True, rich_markup_mode=None)


@app.command("create")
def create(role: str = typer.Option(..., help="admin, operator or viewer"),
           name: str = typer.Option(..., help="a name for the token's holder")) -> None:
    """Create a token and print it once (it is stored only as a hash)."""
    with session() as s:
        _, plain = tokens.create_token(s, name=name, role=role, actor=actor())
    print(plain)
    err_console.print(f"token {name} ({role}) created; it will not be shown again")


@app.command("list")
def list_(output: Format = output_option(), as_json: bool = json_option()) -> None:
    """List tokens (never the secrets: only their first characters)."""
    with session() as s:
        rows = [tokens.to_out(t) for t in tokens.list_tokens(s)]
    if wants_json(output, as_json):
        dump_json(rows)
        return
    t = Table("name", "role", "prefix", "revoked", "last used")
    for r in rows:
        t.add_row(r.name, r.role, r.prefix + "…", "yes" if r.revoked else "", str(r.last_used_at or ""))
    console.print(t)


@app.command("revoke")
def revoke(name: str = typer.Argument(..., help="the token's name")) -> None:
    """Revoke a token: it stops working at once."""
    with session() as s:
        tokens.revoke_token(s, name, actor=actor())
    err_console.print(f"token {name} revoked")
