"""`dgxie serve`: one process with the API, boot HTTP, DHCP and TFTP as the config and its role enable."""

from __future__ import annotations

import logging

import typer
import uvicorn

from dgxie.cli.common import err_console, settings
from dgxie.compose import build_context
from dgxie.compose.servers import add_boot_servers
from dgxie.errors import ConfigError
from dgxie.netboot import sockbuf

KEEP_ALIVE = 75  # s an idle client connection is kept (nginx's default): longer than any Retry-After wait


ROLE_HELP = ("what this instance runs (overrides instance.role): all = everything; api = the API and background "
             "jobs, no DHCP/TFTP; boot = DHCP, TFTP and the boot HTTP paths, no job workers")


def serve(role: str | None = typer.Option(None, "--role", metavar="all|api|boot", help=ROLE_HELP)) -> None:
    """Migrate, then serve until interrupted."""
    from dgxie.app import create_app, http_protocol  # here, so `dgxie --help` does not load the API app
    from dgxie.sections import ROLES

    if role is not None and role not in ROLES:
        raise ConfigError(f"--role {role!r}: expected one of {', '.join(ROLES)}")
    s = settings()
    if role is not None:
        s = s.model_copy(update={"instance": s.instance.model_copy(update={"role": role})})
    sockbuf.raise_open_files()  # a storm's transfers each hold a socket and a file
    logging.basicConfig(level=s.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = build_context(s)
    for handler in logging.getLogger().handlers:  # a database outage is one line, not a traceback a poll
        handler.addFilter(ctx.db_health.log_filter())
    add_boot_servers(ctx)
    app = create_app(ctx)
    host, _, port = s.api.listen.rpartition(":")
    inst = s.instance
    err_console.print(f"dgxie serving on http://{host}:{port} (OpenAPI at /docs; database "
                      f"{s.database_url.split('@')[-1]}; instance {inst.id}, role {inst.role})",
                      highlight=False, markup=False, soft_wrap=True)
    if s.public_url_note:
        err_console.print(f"public_url {s.public_url}: not set, so derived from {s.public_url_note} (set public_url "
                          "if nodes reach dgxie another way)", highlight=False, markup=False, soft_wrap=True)
    uvicorn.run(app, host=host.strip("[]"), port=int(port), log_level=s.log_level, access_log=False,
                timeout_keep_alive=KEEP_ALIVE,
                proxy_headers=False, http=http_protocol(ctx),
                loop="asyncio")  # the stock loop's sendfile is zero-copy; uvloop's is missing
