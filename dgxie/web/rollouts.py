"""Firmware rollouts on the dashboard: the firmware update jobs (`dgxie.firmware.update_jobs`, as
`/api/v1/firmware/updates`).

/ui/firmware lists the latest `RECENT` jobs (`recent()`: one query for the jobs, one aggregate
query for their counts per node status, no node row) and, for operators, a form to start one
(`POST /ui/firmware/updates`). /ui/firmware/updates/{id} is one job: its fields and its nodes,
`PAGE_ROWS` a page, followed live by app.js through `/ui/firmware/updates/{id}.json` (the same
page of rows) while the job is queued or running; operators may cancel it there. Starting and
cancelling call the same service functions as the API (audited the same, the token as actor);
bad input or a refusal is a flash message on the page, and nothing is created or changed.
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from dgxie.api.deps import get_ctx
from dgxie.db import session_scope
from dgxie.errors import DgxieError, Invalid, Unauthorized
from dgxie.firmware import packages, update_jobs
from dgxie.firmware.update_jobs import UpdateIn, UpdateOut
from dgxie.tokens import Role
from dgxie.web.auth import for_action, signed_in
from dgxie.web.render import page, redirect

router = APIRouter(prefix="/ui", include_in_schema=False)
RECENT, PAGE_ROWS, MAX_ID = 20, 200, 2**31 - 1
UpdateId = Path(ge=1, le=MAX_ID)
PageNo = Query(1, alias="page", ge=1, le=1000)


def recent(request: Request) -> tuple[list[UpdateOut], list[packages.Package]]:
    """The latest jobs (newest first, counts but no node rows) and the staged packages (blocking)."""
    ctx = get_ctx(request)
    with session_scope(ctx.sessions) as s:
        jobs = update_jobs.list_jobs(s, RECENT)
        counts = update_jobs.counts_of(s, [j.id for j in jobs])
        out = [update_jobs.out_of(j, counts[j.id], []) for j in jobs]
    return out, packages.list_packages(ctx.site)


def _one(request: Request, update_id: int, page_no: int) -> UpdateOut:
    """The job with its counts and one page of its node rows (404 for an unknown id)."""
    ctx = get_ctx(request)
    with session_scope(ctx.sessions) as s:
        job = update_jobs.get(s, update_id)
        rows = update_jobs.rows_of(s, update_id, (page_no - 1) * PAGE_ROWS, PAGE_ROWS)
        return update_jobs.out_of(job, update_jobs.counts_of(s, [update_id])[update_id], rows)


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", text) if w]


def parse_form(form: dict[str, str]) -> UpdateIn:
    """The start form as `UpdateIn`: nodes or tags (whitespace or comma separated), targets one a
    line, checkboxes present when ticked. `Invalid` with one line on the first mistake."""
    batch = form.get("batch", "").strip() or "1"
    if not batch.isdigit():
        raise Invalid("batch: a whole number of nodes per wave")
    try:
        return UpdateIn(nodes=_words(form.get("nodes", "")), tags=_words(form.get("tags", "")),
                        package=form.get("package", ""), batch=int(batch), baseline="baseline" in form,
                        drain="drain" in form,
                        targets=[t.strip() for t in form.get("targets", "").splitlines() if t.strip()])
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(p) for p in e["loc"])
        raise Invalid(f"{where + ': ' if where else ''}{e['msg'].removeprefix('Value error, ')}") from None


@router.get("/firmware/updates/{update_id}.json")
async def rollout_json(request: Request, update_id: int = UpdateId, page_no: int = PageNo) -> Response:
    """The job with its counts and the page's node rows, for the job page's live rows."""
    if await signed_in(request) is None:
        raise Unauthorized("not signed in")
    job = await run_in_threadpool(_one, request, update_id, page_no)
    return JSONResponse(job.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


@router.get("/firmware/updates/{update_id}")
async def rollout_page(request: Request, update_id: int = UpdateId, page_no: int = PageNo) -> Response:
    """One job: its fields, counts and `PAGE_ROWS` of its nodes a page; Cancel for operators."""
    who = await signed_in(request)
    if who is None:
        return redirect("/ui/login")
    job = await run_in_threadpool(_one, request, update_id, page_no)
    total = sum(job.counts.values())
    return page("rollout.html", request=request, title=f"Rollout {job.id}", page="firmware", who=who, job=job,
                page_no=page_no, pages=max(1, math.ceil(total / PAGE_ROWS)), total=total)


@router.post("/firmware/updates")
async def start_rollout(request: Request) -> Response:
    """Queue a firmware update job from the start form (operator); to its page, or back to
    /ui/firmware with the refusal (nothing created)."""
    who, form = await for_action(request, Role.OPERATOR)
    ctx = get_ctx(request)

    def run() -> tuple[int, int]:
        body = parse_form(form)
        with session_scope(ctx.sessions) as s:
            job = update_jobs.create(s, ctx.site, body, actor=who.principal.actor)
            counts = update_jobs.counts_of(s, [job.id])[job.id]
            return job.id, counts.get("pending", 0)

    try:
        job_id, todo = await run_in_threadpool(run)
    except DgxieError as exc:
        return redirect("/ui/firmware#rollouts", flash=f"rollout refused: {exc.detail}", error=True)
    return redirect(f"/ui/firmware/updates/{job_id}", flash=f"rollout {job_id} queued: {todo} node(s) to update")


@router.post("/firmware/updates/{update_id}/cancel")
async def cancel_rollout(request: Request, update_id: int = UpdateId) -> Response:
    """Cancel the job's nodes not started (operator); back to its page with the outcome (an
    ended job's refusal shown there, an unknown id a 404)."""
    who, _ = await for_action(request, Role.OPERATOR)
    ctx = get_ctx(request)

    def run() -> dict[str, Any]:
        with session_scope(ctx.sessions) as s:
            job = update_jobs.cancel(s, update_id, actor=who.principal.actor)
            return {"status": job.status, "cancelled": update_jobs.counts_of(s, [update_id])[update_id]
                    .get("cancelled", 0)}

    try:
        out = await run_in_threadpool(run)
        msg, error = f"rollout {update_id}: {out['cancelled']} node(s) cancelled, the job is {out['status']}", False
    except DgxieError as exc:
        if exc.status == 404:
            raise
        msg, error = f"cancel refused: {exc.detail}", True
    return redirect(f"/ui/firmware/updates/{update_id}", flash=msg, error=error)
