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
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dgxie.api.deps import get_ctx, peer_address
from dgxie.api.limits import read_body
from dgxie.errors import NotFound
from dgxie.install import legacy, seed, service
from dgxie.nodes.schemas import CallbackOut

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
