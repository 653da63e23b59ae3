"""The dashboard's state-changing requests (POST forms): sign in, sign out, node actions.

Each checks the Origin (sign in included, against login CSRF); sign out and the node actions
also check the session's CSRF token and the role (`dgxie.web.auth.for_action`): a viewer's POST
is a 403 JSON error, whatever the page showed. A node action calls the same service function as
the API (so it is audited the same way, with the token as actor) and redirects back to the node
page with what happened; a refused action (409, a BMC that does not answer) is shown there too.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dgxie.api.deps import get_ctx
from dgxie.db import session_scope
from dgxie.errors import DgxieError, Invalid, Unauthorized
from dgxie.handoff import hooks
from dgxie.nodes import power, service
from dgxie.nodes.enroll import erase_node
from dgxie.nodes.reprovision import reprovision_node
from dgxie.tokens import Role
from dgxie.web.auth import for_action, read_form, signed_in, store
from dgxie.web.pages import ACTIONS
from dgxie.web.render import page, redirect
from dgxie.web.session import COOKIE, check_origin, clear_cookie, set_cookie

router = APIRouter(prefix="/ui", include_in_schema=False)
NODE_ACTIONS = tuple(action for action, _, _ in ACTIONS)  # the node page's buttons


@router.get("/login")
async def login_form(request: Request) -> Response:
    if await signed_in(request) is not None:
        return redirect("/ui/")
    return page("login.html", title="Sign in", who=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the API token; on success a new session (cookie) and a redirect to the fleet."""
    ctx = get_ctx(request)
    public_url = ctx.site.public_url
    check_origin(request, public_url)
    token = (await read_form(request)).get("token", "").strip()
    try:
        if not token or len(token) > 200:
            raise Unauthorized("no token")
        sid, _ = await run_in_threadpool(store(request).create, ctx.sessions, ctx.site.box, ctx.tokens, token)
    except Unauthorized:
        return page("login.html", status=401, title="Sign in", who=None, error=True,
                    message="That token is unknown or revoked.")
    old = request.cookies.get(COOKIE)
    if old:  # a new id at every sign-in (no session fixation): the old one is deleted
        await run_in_threadpool(store(request).drop, ctx.sessions, old)
    response = redirect("/ui/")
    set_cookie(request, response, sid, public_url)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await for_action(request, Role.VIEWER)
    await run_in_threadpool(store(request).drop, get_ctx(request).sessions, request.cookies.get(COOKIE))
    response = redirect("/ui/login")
    clear_cookie(response)
    return response


@router.post("/nodes/{ref}/action")
async def node_action(ref: str, request: Request) -> Response:
    """One of NODE_ACTIONS on the node (operator); back to the node page with the outcome."""
    who, form = await for_action(request, Role.OPERATOR)
    action = form.get("action", "")
    if action not in NODE_ACTIONS:
        raise Invalid(f"action: one of {', '.join(NODE_ACTIONS)}")
    ctx, actor = get_ctx(request), who.principal.actor

    def run() -> tuple[str, str]:
        if action in ("reprovision", "erase"):
            run_node = reprovision_node if action == "reprovision" else erase_node
            out = run_node(ctx.sessions, ctx.site, ref, actor=actor, hooks=ctx.reprovision)
            pc = out.power_cycle
            extra = "" if pc is None else " (PXE once + power cycle done)" if pc.ok else f" ({pc.error})"
            return out.hostname, f"{action}: {out.hostname} is {out.state}{extra}"
        with session_scope(ctx.sessions) as s:
            node = service.get_node(s, ref)
            host = node.hostname
            if action.startswith("power-"):
                res = power.power(s, ctx.site, node, action.removeprefix("power-"), actor=actor)
                return host, f"power {res.action}: sent (the BMC read {res.power} right after; it may be changing)"
            if action == "pxe-once":
                power.boot_once(s, ctx.site, node, "pxe", actor=actor)
                return host, "the next boot is from PXE"
            run_hook = hooks.drain_now if action == "drain" else hooks.resume_now
            res_h = run_hook(s, ctx.site, node, actor=actor)
            return host, f"{action} hook {'ok' if res_h.ok else 'failed (rc ' + str(res_h.rc) + ')'}"

    try:
        host, msg = await run_in_threadpool(run)
        error = False
    except DgxieError as exc:
        if exc.status == 404:
            raise
        host, msg, error = ref, f"{action} refused: {exc.detail}", True
    return redirect(f"/ui/nodes/{quote(host)}", flash=msg, error=error)
