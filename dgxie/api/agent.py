"""The deploy agent's HTTP API (docs/deploy.md): plain text in and out, for a busybox shell.

    POST /agent/v1/hello     form mac=, first=1|0    from the node's own address -> token, mode
    POST /agent/v1/facts     tar body                 Bearer agent token
    GET  /agent/v1/plan                               Bearer -> shell-sourceable plan
    POST /agent/v1/progress  form step=, message=     Bearer
    POST /agent/v1/done      form status=, step=, log=  Bearer

Errors are the usual `{"detail": ...}` JSON with 4xx; the agent prints the detail and retries or
stops. The work is `dgxie.agent.service`; these routes only speak HTTP.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dgxie.agent import service
from dgxie.api.deps import get_ctx, peer_address
from dgxie.api.limits import read_body
from dgxie.context import Context
from dgxie.db import session_scope
from dgxie.errors import Conflict, Invalid, Unauthorized
from dgxie.models import Node
from dgxie.validation import check_text

router = APIRouter(prefix="/agent/v1", tags=["agent"])
FORM_LIMIT = 64 << 10
TEXT = "text/plain; charset=utf-8"


async def _form(request: Request) -> dict[str, str]:
    """The form fields; a NUL is refused (422) except in `log`, raw tool output, where it is dropped."""
    raw = await read_body(request, FORM_LIMIT)
    try:
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise Invalid("form body is not UTF-8") from None
    form = dict(pairs)
    if "log" in form:
        form["log"] = form["log"].replace("\x00", "")
    for key, value in form.items():
        check_text(value, f"form.{key}")
    return form


def _token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("agent token not valid")
    return token.strip()


@router.post("/hello", include_in_schema=False)
async def hello(request: Request) -> Response:
    ctx = get_ctx(request)
    form = await _form(request)
    peer = peer_address(request)

    def work() -> str:
        with session_scope(ctx.sessions) as s:
            return service.hello(s, ctx.site, form.get("mac", ""), peer, first=form.get("first") == "1")

    return Response(await run_in_threadpool(work), media_type=TEXT)


def _with_node(ctx: Context, token: str, fn: Callable[[Session, Node], object]) -> str:
    """Run `fn` on the token's node in one transaction (a 401 changes nothing)."""
    with session_scope(ctx.sessions) as s:
        return str(fn(s, service.node_by_token(s, token)))


@router.post("/facts", include_in_schema=False)
async def facts(request: Request) -> Response:
    ctx = get_ctx(request)
    token = _token(request)
    data = await read_body(request, ctx.site.boot.agent_facts_max_bytes)
    limit = ctx.site.boot.agent_facts_max_bytes
    await run_in_threadpool(_with_node, ctx, token,
                            lambda s, n: service.receive_facts(s, n, data, max_bytes=limit))
    return Response("ok\n", media_type=TEXT)


@router.get("/plan", include_in_schema=False)
async def plan(request: Request) -> Response:
    ctx = get_ctx(request)
    token = _token(request)

    def work() -> tuple[str, str | None]:
        with session_scope(ctx.sessions) as s:
            node = service.node_by_token(s, token)
            try:
                return service.plan(s, ctx.site, node), None
            except service.PlanRefused as exc:
                return "", str(exc)  # committed: the node is failed with the reason

    text, refused = await run_in_threadpool(work)
    if refused is not None:
        raise Conflict(refused)
    return Response(text, media_type=TEXT, headers={"Cache-Control": "no-store"})


@router.post("/progress", include_in_schema=False)
async def progress(request: Request) -> Response:
    ctx = get_ctx(request)
    token = _token(request)
    form = await _form(request)
    await run_in_threadpool(_with_node, ctx, token,
                            lambda s, n: service.progress(s, n, form.get("step", ""), form.get("message", "")))
    return Response("ok\n", media_type=TEXT)


@router.post("/done", include_in_schema=False)
async def done(request: Request) -> Response:
    ctx = get_ctx(request)
    token = _token(request)
    form = await _form(request)
    out = await run_in_threadpool(
        _with_node, ctx, token,
        lambda s, n: service.done(s, ctx.site, n, status=form.get("status", ""), step=form.get("step", ""),
                                  log=form.get("log", "")))
    return Response(out + "\n", media_type=TEXT)
