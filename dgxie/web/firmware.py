"""/ui/firmware: the compliance matrix (nodes x components, each cell the installed version with
its verdict against the baseline), filtered by component glob, status and node; the nodes with no
verdict (no scan, or a model without a baseline) listed apart; CSV and JSON downloads of the same
rows (`dgxie.firmware.compliance`, as `GET /api/v1/firmware/compliance`); the latest rollouts
(firmware update jobs) and, for operators, the form that starts one (`dgxie.web.rollouts`)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dgxie.api.deps import get_ctx
from dgxie.db import session_scope
from dgxie.errors import NotFound
from dgxie.firmware import compliance
from dgxie.web import rollouts
from dgxie.web.auth import signed_in
from dgxie.web.render import page, redirect

router = APIRouter(prefix="/ui", include_in_schema=False)
MAX_NODES, MAX_COMPONENTS = 200, 60


def matrix(rows: list[dict[str, Any]]) -> tuple[list[str], list[tuple[str, dict[str, dict[str, Any]]]], list[str]]:
    """(components, [(node, {component: row})], nodes with no verdict) from compliance rows."""
    comps = sorted({r["component"] for r in rows if r["component"] and r["status"] != "unknown"})
    grid: dict[str, dict[str, dict[str, Any]]] = {}
    unknown: dict[str, None] = {}
    for r in rows:
        if r["status"] == "unknown":
            unknown[r["node"]] = None
        elif r["component"]:
            grid.setdefault(r["node"], {})[r["component"]] = r
    return comps, sorted(grid.items()), [n for n in unknown if n not in grid]


def _load(request: Request, node: str, component: str, status: str) -> list[dict[str, Any]]:
    ctx = get_ctx(request)
    with session_scope(ctx.sessions) as s:
        return compliance.rows(s, ctx.site, node=node.lower() or None, component=component or None,
                               status=status or None)


Component = Query("", max_length=128)
Status = Query("", max_length=16)
NodeQ = Query("", max_length=63)


@router.get("/firmware.{fmt}")
async def firmware_download(fmt: str, request: Request, component: str = Component, status: str = Status,
                            node: str = NodeQ) -> Response:
    """The filtered compliance rows as `compliance.csv` or `compliance.json`."""
    if await signed_in(request) is None:
        return redirect("/ui/login")
    if fmt not in ("csv", "json"):
        raise NotFound(f"no format {fmt!r} (csv or json)")
    rows = await run_in_threadpool(_load, request, node, component, status)
    body = compliance.to_csv(rows) if fmt == "csv" else json.dumps(rows)
    return Response(body, media_type="text/csv" if fmt == "csv" else "application/json",
                    headers={"Content-Disposition": f'attachment; filename="compliance.{fmt}"'})


@router.get("/firmware")
async def firmware_page(request: Request, component: str = Component, status: str = Status, node: str = NodeQ,
                        page_no: int = Query(1, alias="page", ge=1, le=10_000)) -> Response:
    """The matrix, 200 nodes a page, the nodes with no verdict, the latest rollouts."""
    who = await signed_in(request)
    if who is None:
        return redirect("/ui/login")
    rows = await run_in_threadpool(_load, request, node, component, status)
    comps, grid, unknown = matrix(rows)
    jobs, staged = await run_in_threadpool(rollouts.recent, request)
    start = (page_no - 1) * MAX_NODES
    f = {"component": component, "status": status, "node": node}
    query = urlencode({k: v for k, v in f.items() if v})
    return page("firmware.html", request=request, title="Firmware", page="firmware", who=who, f=f, query=query,
                jobs=jobs, staged=staged,
                summary=compliance.summary(rows), comps=comps[:MAX_COMPONENTS], cut=len(comps) > MAX_COMPONENTS,
                grid=grid[start:start + MAX_NODES], total=len(grid), unknown=unknown[:500], unknown_n=len(unknown),
                page_no=page_no, more=start + MAX_NODES < len(grid))
