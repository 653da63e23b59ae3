"""Install configs and installer callbacks under each node's secret URL (unauthenticated).

    GET  /boot/n/{token}/user-data|meta-data|vendor-data|preseed|kickstart
    POST /boot/n/{token}/events

A wrong token, an unknown node and an artefact the node's template set lacks are all the same
404 (no oracle). A config that fails to render or validate is a 503 `config not available` for the
node (never half a config) and an error in the log and in the node's events for the admin.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dgxie.api.deps import get_ctx
from dgxie.boot.state import State
from dgxie.db import session_scope
from dgxie.errors import Invalid, NotFound, TooLarge
from dgxie.events import record
from dgxie.handoff.bootstrap import on_installed
from dgxie.install import seed
from dgxie.nodes import callbacks

if TYPE_CHECKING:
    from dgxie.context import Context

log = logging.getLogger("dgxie.install")
router = APIRouter(tags=["install"])
UNAVAILABLE = {"detail": "config not available"}


def _serve(ctx: Context, token: str, artifact: str) -> seed.Rendered | None:
    with session_scope(ctx.sessions) as s:
        node = callbacks.node_by_token(s, token, lock=True)
        try:
            rendered = seed.render(ctx.site, node, artifact)
        except NotFound:
            raise NotFound("not found") from None
        except Invalid as exc:
            log.error("install config %s for %s is not available: %s", artifact, node.hostname, exc.detail)
            record(s, actor="dgxie", kind="render.error", node=node, reason=exc.detail[:2000],
                   data={"artifact": artifact})
            return None
        callbacks.note_fetch(s, node, artifact)
        return rendered


@router.get("/boot/n/{token}/{artifact}", include_in_schema=False)
def seed_file(token: str, artifact: str, request: Request) -> Response:
    if artifact not in seed.ARTIFACTS:
        raise NotFound("not found")
    rendered = _serve(get_ctx(request), token, artifact)
    if rendered is None:
        return JSONResponse(UNAVAILABLE, status_code=503)
    return Response(rendered.text, media_type=rendered.content_type, headers={"Cache-Control": "no-store"})


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooLarge(f"callback body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"callback body larger than {limit} bytes")
    return bytes(body)


def _callback(ctx: Context, token: str, body: bytes) -> dict[str, Any]:
    with session_scope(ctx.sessions) as s:
        node = callbacks.node_by_token(s, token, lock=True)
        cb = callbacks.parse(body)
        result = callbacks.apply(s, node, cb, interval=ctx.site.install.progress_interval_seconds)
        if result["changed"] and node.state == State.INSTALLED.value:
            result["bootstrap"] = on_installed(s, ctx.site, node, actor=callbacks.INSTALLER)
            result["state"] = node.state
        return result


@router.post("/boot/n/{token}/events", include_in_schema=False)
async def installer_event(token: str, request: Request) -> dict[str, Any]:
    ctx = get_ctx(request)
    body = await _body(request, ctx.site.install.callback_max_bytes)
    return await run_in_threadpool(_callback, ctx, token, body)
