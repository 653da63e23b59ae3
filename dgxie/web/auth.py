"""Who a dashboard request is: the session cookie -> the session row and its API token's principal.

Pages call `signed_in` (None: not signed in, or the token was revoked or the session expired;
the page then redirects to the sign-in form). Actions call `for_action`, which also checks the
Origin and the CSRF token and the role (403 JSON, the API's error body, otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from dgxie.api.deps import get_ctx
from dgxie.errors import Forbidden, Invalid, Unauthorized
from dgxie.tokens import RANK, Principal, Role
from dgxie.web.session import COOKIE, check_csrf, check_origin
from dgxie.web.store import SessionStore, WebSession

MAX_FORM_BYTES = 16 * 1024


@dataclass(frozen=True)
class WebUser:
    """A signed-in dashboard user: the session row and the token's principal."""
    session: WebSession
    principal: Principal

    @property
    def can_act(self) -> bool:
        return RANK[self.principal.role] >= RANK[Role.OPERATOR]


def store(request: Request) -> SessionStore:
    sessions = request.app.state.web_sessions
    assert isinstance(sessions, SessionStore), "dgxie.web.install() puts the store on app.state"
    return sessions


async def signed_in(request: Request) -> WebUser | None:
    """The session of the request's cookie: from this process's short cache, else one query."""
    sid = request.cookies.get(COOKIE)
    if not sid:
        return None
    ctx = get_ctx(request)
    row = store(request).cached(sid, ctx.tokens)
    if row is None:
        row = await run_in_threadpool(store(request).load, ctx.sessions, ctx.site.box, ctx.tokens, sid)
    return None if row is None else WebUser(row, row.principal)


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (at most 16 KiB) as a dict (last value wins)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise Invalid("body: must be a form (application/x-www-form-urlencoded)")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Invalid("body: form larger than 16 KiB")
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50))
    except (UnicodeDecodeError, ValueError):
        raise Invalid("body: not a valid form") from None


async def for_action(request: Request, role: Role = Role.OPERATOR) -> tuple[WebUser, dict[str, str]]:
    """The signed-in user and the form of a state-changing request, after the Origin, CSRF and role
    checks (401 when not signed in, 403 otherwise)."""
    check_origin(request, get_ctx(request).site.public_url)
    who = await signed_in(request)
    if who is None:
        raise Unauthorized("not signed in (or the session expired): sign in again")
    form = await read_form(request)
    check_csrf(who.session, form.get("csrf"))
    if RANK[who.principal.role] < RANK[role]:
        raise Forbidden(f"token {who.principal.name} is {who.principal.role.value}; this needs {role.value}")
    return who, form
