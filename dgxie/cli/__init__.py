"""The `dgxie` command line (typer + rich). Thin: parses, calls services, prints.

Every command accepts `--config FILE` anywhere on the line (and reads `$DGXIE_CONFIG`). Exit
status: 0 on success, 1 on a user error with one line on stderr, never a traceback for bad input.
"""

from __future__ import annotations

import os
import sys

# pydantic looks for plugins in every installed distribution's entry points the first time a model
# is built (tens of ms per command); dgxie has none. Set PYDANTIC_DISABLE_PLUGINS= (empty) to keep
# looking for yours.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer

from dgxie import CONFIG_ENV, __version__
from dgxie.cli import common, gcpause
from dgxie.cli.lazy import Lazy, group
from dgxie.errors import ConfigError, DgxieError

COMMANDS = {  # imported only when used (cli/lazy.py); the help line is checked against the code by a test
    "serve": Lazy("dgxie.cli.serve_cmd", "serve",
                  "Run the API, boot HTTP, DHCP and TFTP servers as the config enables.", own_help=True),
    "db": Lazy("dgxie.cli.db_cmd", "app", "Database schema."),
    "token": Lazy("dgxie.cli.token_cmd", "app", "API tokens."),
    "node": Lazy("dgxie.cli.node_cmd", "app", "Node inventory."),
    "profile": Lazy("dgxie.cli.profile_cmd", "app", "Install profiles: an image, a template set, a role and vars."),
    "mirror": Lazy("dgxie.cli.mirror_cmd", "app", "APT and OCI mirrors: sync, snapshots, air-gap export/import."),
    "mirror-oci": Lazy("dgxie.cli.oci_cmd", "app", "OCI/NGC registry mirrors."),  # OCI-only: snapshots, switch
    "render": Lazy("dgxie.cli.render_cmd", "render", "Print what a node would be served: ipxe, user-data, "
                   "meta-data, vendor-data, preseed, kickstart (--explain).", own_help=True),
    "inventory": Lazy("dgxie.cli.inventory_cmd", "app", "Ansible and Slurm inventories built from the nodes."),
    "secret": Lazy("dgxie.cli.secret_cmd", "app",
                   "Secrets given to nodes' bootstrap scripts (join tokens, munge keys)."),
    "firmware": Lazy("dgxie.cli.firmware_cmd", "app", "BMC firmware inventory, baselines and compliance."),
    "image": Lazy("dgxie.cli.image_cmd", "app", "Boot images (kernel + initrd + files, stored by sha256)."),
    "agent": Lazy("dgxie.cli.agent_cmd", "app", "dgxie's deploy agent (kernel + initramfs)."),
    "completion": Lazy("dgxie.cli.completion_cmd", "completion",
                       "Print SHELL's completion script, e.g. `dgxie completion bash > "
                       "/etc/bash_completion.d/dgxie`."),
}

app = typer.Typer(name="dgxie", help="Bare-metal provisioning for GPU clusters.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=True, cls=group(COMMANDS),
                  rich_markup_mode=None)  # click's plain help: rich's costs 0.15 s of imports per --help


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
    gcpause.FREEZE[0] = argv is None  # the process's own command line: it exits after the command
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
    finally:  # close the database cleanly: SQLite merges its WAL into the file when the last connection closes
        common.reset()


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
