"""The `dgxie` command line (typer + rich). Thin: parses, calls services, prints.

Every command accepts `--config FILE` anywhere on the line (and reads `$DGXIE_CONFIG`). Exit
status: 0 on success, 1 on a user error with one line on stderr, never a traceback for bad input.
"""

from __future__ import annotations

import os
import sys

import typer

from dgxie import __version__
from dgxie.cli import (
    agent_cmd,
    common,
    completion_cmd,
    db_cmd,
    firmware_cmd,
    image_cmd,
    import_cmd,
    inventory_cmd,
    lifecycle_cmd,
    mirror_cmd,
    node_cmd,
    oci_cmd,
    power_cmd,
    profile_cmd,
    render_cmd,
    secret_cmd,
    serve_cmd,
    token_cmd,
)
from dgxie.config import CONFIG_ENV
from dgxie.errors import ConfigError, DgxieError

app = typer.Typer(name="dgxie", help="Bare-metal provisioning for GPU clusters.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=True)


def _version(value: bool) -> None:
    if value:
        print(f"dgxie {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                       help="Print dgxie's version and exit."),
          config: str | None = typer.Option(
              None, "--config", metavar="FILE", show_envvar=False,
              help=f"config file (default ${CONFIG_ENV}, else built-in defaults); accepted anywhere on the line"),
          ) -> None:
    """Bare-metal provisioning for GPU clusters. (`--config` is taken out of argv by `_take_config`
    before click parses; it is declared here for --help.)"""


app.command("serve", help="Run the API, boot HTTP, DHCP and TFTP servers as the config enables.")(serve_cmd.serve)
app.add_typer(db_cmd.app, name="db")
app.add_typer(token_cmd.app, name="token")
app.add_typer(node_cmd.app, name="node")
node_cmd.app.command("import")(import_cmd.import_)
app.add_typer(profile_cmd.app, name="profile")
node_cmd.app.command("reprovision")(lifecycle_cmd.reprovision)
node_cmd.app.command("watch")(lifecycle_cmd.watch)
node_cmd.app.command("enroll")(lifecycle_cmd.enroll)
node_cmd.app.command("erase")(lifecycle_cmd.erase)
node_cmd.app.command("power")(power_cmd.power)
node_cmd.app.command("bootdev")(power_cmd.bootdev)
app.add_typer(mirror_cmd.app, name="mirror")
app.add_typer(oci_cmd.app, name="mirror-oci")  # OCI-only extras: snapshots, switch
app.command("render", help="Print what a node would be served: ipxe, user-data, meta-data, vendor-data, preseed, "
            "kickstart (--explain).")(render_cmd.render)
app.add_typer(inventory_cmd.app, name="inventory")
app.add_typer(secret_cmd.app, name="secret")
app.add_typer(firmware_cmd.app, name="firmware")
app.add_typer(image_cmd.app, name="image")
app.add_typer(agent_cmd.app, name="agent")
app.command("completion")(completion_cmd.completion)


def _take_config(argv: list[str]) -> list[str]:
    """Remove `--config FILE` / `--config=FILE` from anywhere in argv and remember it."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--config":
            value = next(it, None)
            if value is None:
                raise ConfigError("--config needs a FILE")
            common.CONFIG_PATH[0] = value
            os.environ[CONFIG_ENV] = value  # children (ansible -> the inventory script) read the same config
        elif arg.startswith("--config="):
            common.CONFIG_PATH[0] = value = arg.split("=", 1)[1]
            os.environ[CONFIG_ENV] = value  # likewise
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
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        _cli_exit(exc)


def _cli_exit(exc: Exception) -> None:
    """Map click's (or typer's vendored click's) exceptions to one line and an exit status."""
    name = type(exc).__name__
    if name == "Exit":
        sys.exit(int(getattr(exc, "exit_code", 0)))
    if name == "Abort":
        print("dgxie: aborted", file=sys.stderr)
        sys.exit(1)
    fmt = getattr(exc, "format_message", None)
    if not callable(fmt):
        raise exc
    if name == "NoArgsIsHelpError":
        print(fmt())
        sys.exit(0)
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path}: " if ctx is not None and getattr(ctx, "command_path", None) else ""
    print(f"dgxie: error: {where}{fmt()}", file=sys.stderr)
    sys.exit(1)
