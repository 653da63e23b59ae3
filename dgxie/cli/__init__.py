"""The `dgxie` command line (typer + rich). Thin: parses, calls services, prints.

Every command accepts `--config FILE` anywhere on the line (and reads `$DGXIE_CONFIG`). Exit
status: 0 on success, 1 on a user error with one line on stderr, never a traceback for bad input.
"""

from __future__ import annotations

import sys

import click
import typer

from dgxie.cli import common, db_cmd, image_cmd, node_cmd, serve_cmd, token_cmd
from dgxie.errors import DgxieError

app = typer.Typer(name="dgxie", help="Bare-metal provisioning for GPU clusters.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.command("serve", help="Run the API, boot HTTP, DHCP and TFTP servers as the config enables.")(serve_cmd.serve)
app.add_typer(db_cmd.app, name="db")
app.add_typer(token_cmd.app, name="token")
app.add_typer(node_cmd.app, name="node")
app.add_typer(image_cmd.app, name="image")
app.command("render", help="Print what a node would get (ipxe).")(image_cmd.render_cmd)


def _take_config(argv: list[str]) -> list[str]:
    """Remove `--config FILE` / `--config=FILE` from anywhere in argv and remember it."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--config":
            value = next(it, None)
            if value is None:
                raise click.UsageError("--config needs a FILE")
            common.CONFIG_PATH[0] = value
        elif arg.startswith("--config="):
            common.CONFIG_PATH[0] = arg.split("=", 1)[1]
        elif arg == "--":
            out.append(arg)
            out.extend(it)
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _take_config(args)
        rc = app(args=args, prog_name="dgxie", standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except DgxieError as exc:
        first, *rest = exc.detail.splitlines() or [""]
        print(f"dgxie: error: {first}", file=sys.stderr)
        for line in rest:
            print(f"dgxie: error: {line}", file=sys.stderr)
        sys.exit(1)
    except click.exceptions.Abort:
        print("dgxie: aborted", file=sys.stderr)
        sys.exit(1)
    except click.ClickException as exc:
        print(f"dgxie: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
