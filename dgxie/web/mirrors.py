"""/ui/mirrors: each mirror's snapshot in service, size, last sync and failures, its kept snapshots,
the running job's progress (polled live from `/ui/mirrors/{name}/job`), and, for operators, a sync
button and a rollback per older snapshot, each after a confirmation (`dgxie.mirror`, as the API)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from dgxie.api.deps import get_ctx
from dgxie.db import session_scope
from dgxie.errors import DgxieError, Invalid, Unauthorized
from dgxie.mirror import queries, service
from dgxie.mirror.schemas import MirrorOut, SnapshotOut
from dgxie.tokens import Role
from dgxie.web.auth import for_action, signed_in
from dgxie.web.render import page, redirect

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/mirrors")
async def mirrors_page(request: Request) -> Response:
    who = await signed_in(request)
    if who is None:
        return redirect("/ui/login")
    ctx = get_ctx(request)

    def load() -> list[tuple[MirrorOut, list[SnapshotOut]]]:
        with session_scope(ctx.sessions) as s:
            return [(m, queries.list_snapshots(s, ctx.site, m.name)) for m in queries.list_mirrors(s, ctx.site)]

    mirrors = await run_in_threadpool(load)
    return page("mirrors.html", request=request, title="Mirrors", page="mirrors", who=who, mirrors=mirrors)


@router.get("/mirrors/{name}/job")
async def latest_job(name: str, request: Request) -> Response:
    """The mirror's running (else latest) job as JSON, for the page's progress bar."""
    if await signed_in(request) is None:
        raise Unauthorized("not signed in")
    ctx = get_ctx(request)

    def load() -> dict[str, Any] | None:
        with session_scope(ctx.sessions) as s:
            job = queries.get_mirror(s, ctx.site, name).job
            return None if job is None else job.model_dump(mode="json")

    return JSONResponse(await run_in_threadpool(load), headers={"Cache-Control": "no-store"})


@router.post("/mirrors/{name}/action")
async def mirror_action(name: str, request: Request) -> Response:
    """`sync` (a background job) or `rollback` to `snapshot` (operator); back to the mirrors page."""
    who, form = await for_action(request, Role.OPERATOR)
    action, ctx = form.get("action", ""), get_ctx(request)
    if action not in ("sync", "rollback"):
        raise Invalid("action: sync or rollback")

    def run() -> str:
        if action == "sync":
            job = service.start_sync(ctx.sessions, ctx.site, name, trigger=who.principal.actor)
            return f"{name}: sync job {job.id} {job.status}"
        snapshot = form.get("snapshot", "")
        with session_scope(ctx.sessions) as s:
            service.rollback(s, ctx.site, name, snapshot, actor=who.principal.actor)
        return f"{name}: serving snapshot {snapshot}"

    try:
        msg, error = await run_in_threadpool(run), False
    except DgxieError as exc:
        if exc.status == 404:
            raise
        msg, error = f"{action} refused: {exc.detail}", True
    return redirect(f"/ui/mirrors#m-{quote(name)}", flash=msg, error=error)
