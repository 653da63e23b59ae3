"""`dgxie serve`: one process with the API, boot HTTP, DHCP and TFTP as the config enables."""

from __future__ import annotations

import logging

import uvicorn

from dgxie.app import build_context, create_app
from dgxie.cli import serve_dhcp
from dgxie.cli.common import err_console, settings
from dgxie.cli.netboot_wiring import http_protocol, register_tftp


def serve() -> None:
    """Migrate, then serve until interrupted."""
    s = settings()
    logging.basicConfig(level=s.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = build_context(s)
    register_tftp(ctx)
    serve_dhcp.register(ctx)
    app = create_app(ctx)
    host, _, port = s.api.listen.rpartition(":")
    err_console.print(f"dgxie serving on http://{host}:{port} (database {s.database_url.split('@')[-1]})")
    uvicorn.run(app, host=host.strip("[]"), port=int(port), log_level=s.log_level, access_log=False,
                proxy_headers=False, http=http_protocol(ctx),
                loop="asyncio")  # the stock loop's sendfile is zero-copy; uvloop's is missing
