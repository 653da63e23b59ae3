"""Install configs and installer callbacks under each node's boot token (unauthenticated,
node-facing: not in the OpenAPI document; docs/lifecycle.md, docs/security.md).

    GET  /boot/n/{token}/user-data|meta-data|vendor-data|preseed|kickstart
    POST /boot/n/{token}/events/{credential}   installer callbacks (any kind)
    POST /boot/n/{token}/events                progress only (changes no state)
    POST /install                              DGXIE's `action=start|end`, external profiles only

Only the node's own address is answered (403 otherwise, recorded in the node's events). A wrong
token, an unknown node and an artefact the node's template set lacks are all the same 404 (no
oracle); a state with no use for the config is a 409. A config that fails to render or validate is
a 503 `config not available` for the node (never half a config) and an error in the log and in the
node's events for the admin. The work is `dgxie.install.service`; these routes only speak HTTP.

`dgxie serve` answers a plain `GET /boot/n/{token}/{artifact}` on its boot fast path
(`dgxie.api.fastpath`, before the ASGI stack: `fast_seed_path` and `fast_seed_answer` here), with
the same status, body, Content-Type and Cache-Control as `seed_file`; FastAPI's routing and
middleware cost twice what a cached config does (issue 14).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dgxie.api.deps import get_ctx, peer_address
from dgxie.api.limits import read_body
from dgxie.db import UNAVAILABLE as DB_UNAVAILABLE
from dgxie.errors import DgxieError, NotFound
from dgxie.install import legacy, seed, service
from dgxie.netboot.http import response_head
from dgxie.nodes.schemas import CallbackOut

if TYPE_CHECKING:
    from dgxie.context import Context

router = APIRouter(tags=["install"], include_in_schema=False)
UNAVAILABLE = {"detail": "config not available"}


@router.get("/boot/n/{token}/{artifact}")
async def seed_file(token: str, artifact: str, request: Request) -> Response:
    if artifact not in seed.ARTIFACTS:
        raise NotFound("not found")
    ctx = get_ctx(request)
    rendered = await run_in_threadpool(service.serve_config, ctx.sessions, ctx.site, token, artifact,
                                       peer_address(request))
    if rendered is None:
        return JSONResponse(UNAVAILABLE, status_code=503)
    return Response(rendered.text, media_type=rendered.content_type, headers={"Cache-Control": "no-store"})


def fast_seed_path(path: str) -> tuple[str, str] | None:
    """(token, artefact) of a path the fast path answers: `/boot/n/{token}/{artefact}` with a known
    artefact and nothing to decode; None for anything else (the route answers it)."""
    parts = path.split("/")
    if len(parts) != 5 or parts[1] != "boot" or parts[2] != "n" or not parts[3] or "%" in path \
            or parts[4] not in seed.ARTIFACTS:
        return None
    return parts[3], parts[4]


def _answer(status: int, body: bytes, content_type: str, keep_alive: bool,
            extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    hdrs = [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra]
    return response_head(status, HTTPStatus(status).phrase, hdrs, keep_alive=keep_alive) + body


def _json(status: int, detail: str, keep_alive: bool, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    body = json.dumps({"detail": detail}, ensure_ascii=False, separators=(",", ":")).encode()  # as JSONResponse
    return _answer(status, body, "application/json", keep_alive, extra)


def fast_seed_answer(ctx: Context, token: str, artifact: str, peer: str, keep_alive: bool) -> bytes:
    """The whole HTTP response `seed_file` gives (blocking: call it in a worker thread), errors
    included: a DgxieError's status and detail, a database outage's 503 with Retry-After."""
    try:
        rendered = service.serve_config(ctx.sessions, ctx.site, token, artifact, peer)
    except DgxieError as exc:
        return _json(exc.status, exc.detail, keep_alive)
    except DB_UNAVAILABLE as exc:
        ctx.db_health.down(exc)
        return _json(503, "database unavailable", keep_alive, (("Retry-After", str(ctx.settings.api.retry_after)),))
    if rendered is None:
        return _json(503, UNAVAILABLE["detail"], keep_alive)
    return _answer(200, rendered.text.encode(), rendered.content_type, keep_alive, (("Cache-Control", "no-store"),))


async def _callback(request: Request, token: str, credential: str | None) -> CallbackOut:
    ctx = get_ctx(request)
    body = await read_body(request, ctx.site.install.callback_max_bytes, "callback body")
    return await run_in_threadpool(service.receive_callback, ctx.sessions, ctx.site, token, body,
                                   peer_address(request), credential)


@router.post("/boot/n/{token}/events/{credential}", response_model_exclude_none=True)
async def installer_event(token: str, credential: str, request: Request) -> CallbackOut:
    return await _callback(request, token, credential)


@router.post("/boot/n/{token}/events", response_model_exclude_none=True)
async def installer_progress(token: str, request: Request) -> CallbackOut:
    return await _callback(request, token, None)


@router.post("/install", response_model_exclude_none=True)
async def dgxie_install_report(request: Request) -> CallbackOut:
    """DGXIE's install report (`curl -X POST -d action=end IP:PORT/install`): `dgxie.install.legacy`."""
    ctx = get_ctx(request)
    body = await read_body(request, ctx.site.install.callback_max_bytes, "install report")
    return await run_in_threadpool(legacy.report, ctx.sessions, ctx.site, body, peer_address(request))
