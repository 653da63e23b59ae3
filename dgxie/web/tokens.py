"""/ui/tokens (admin): the API tokens (name, role, prefix, created, last used, revoked), a form to
create one (its secret shown once, on the answer to that POST only) and a revoke button per live
token, after a confirmation (`dgxie.tokens`, as `POST` / `DELETE /api/v1/tokens`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dgxie import tokens
from dgxie.api.deps import get_ctx
from dgxie.db import session_scope
from dgxie.errors import DgxieError, Forbidden
from dgxie.tokens import RANK, Role
from dgxie.web.auth import WebUser, for_action, signed_in
from dgxie.web.render import page, redirect

router = APIRouter(prefix="/ui", include_in_schema=False)


def _list(request: Request) -> list[tokens.TokenOut]:
    with session_scope(get_ctx(request).sessions) as s:
        return [tokens.to_out(t) for t in tokens.list_tokens(s)]


async def _page(request: Request, who: WebUser, status: int = 200, **values: Any) -> Response:
    rows = await run_in_threadpool(_list, request)
    return page("tokens.html", status=status, request=request, title="Tokens", page="tokens", who=who, rows=rows,
                roles=[r.value for r in Role], **values)


@router.get("/tokens")
async def tokens_page(request: Request) -> Response:
    who = await signed_in(request)
    if who is None:
        return redirect("/ui/login")
    if RANK[who.principal.role] < RANK[Role.ADMIN]:
        raise Forbidden(f"token {who.principal.name} is {who.principal.role.value}; this needs admin")
    return await _page(request, who)


@router.post("/tokens")
async def create(request: Request) -> Response:
    """A new token; the answer is the page with its secret, shown this once (201)."""
    who, form = await for_action(request, Role.ADMIN)
    name, role = form.get("name", "").strip(), form.get("role", "")

    def run() -> str:
        with session_scope(get_ctx(request).sessions) as s:
            return tokens.create_token(s, name=name, role=role, actor=who.principal.actor)[1]

    try:
        plain = await run_in_threadpool(run)
    except DgxieError as exc:
        return await _page(request, who, status=exc.status, message=f"not created: {exc.detail}", error=True)
    return await _page(request, who, status=201, created=(name, role, plain))


@router.post("/tokens/{name}/revoke")
async def revoke(name: str, request: Request) -> Response:
    who, _ = await for_action(request, Role.ADMIN)
    ctx = get_ctx(request)

    def run() -> None:
        with session_scope(ctx.sessions) as s:
            tokens.revoke_token(s, name, actor=who.principal.actor)

    await run_in_threadpool(run)
    ctx.tokens.forget(name)  # refused at once by this process (its sessions end with it)
    return redirect("/ui/tokens", flash=f"token {name} revoked")
