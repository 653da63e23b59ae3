"""/ui/firmware: the compliance matrix (nodes x components, each cell the installed version with
its verdict against the baseline), filtered by component glob, status and node; the nodes with no
verdict (no scan, or a model without a baseline) listed apart; CSV and JSON downloads of the same
rows (`dgxie.firmware.compliance`, as `GET /api/v1/firmware/compliance`)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dgxie.api.deps import get_ctx
from dgxie.db import session_scope
from dgxie.firmware import compliance
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


@router.get("/firmware{ext}")
async def firmware_page(request: Request, ext: str = "", component: str = Query("", max_length=128),
                        status: str = Query("", max_length=16), node: str = Query("", max_length=63),
                        page_no: int = Query(1, alias="page", ge=1, le=10_000)) -> Response:
    """The matrix page (`ext` empty), or the filtered rows as `.csv` / `.json`."""
    who = await signed_in(request)
    if who is None:
        return redirect("/ui/login")
    if ext not in ("", ".csv", ".json"):
        return Response(status_code=404)
    ctx = get_ctx(request)

    def load() -> list[dict[str, Any]]:
        with session_scope(ctx.sessions) as s:
            return compliance.rows(s, ctx.site, node=node.lower() or None, component=component or None,
                                   status=status or None)

    rows = await run_in_threadpool(load)
    if ext == ".csv":
        return Response(compliance.to_csv(rows), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="compliance.csv"'})
    if ext == ".json":
        return Response(json.dumps(rows), media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="compliance.json"'})
    comps, grid, unknown = matrix(rows)
    start = (page_no - 1) * MAX_NODES
    f = {"component": component, "status": status, "node": node}
    query = urlencode({k: v for k, v in f.items() if v})
    more = start + MAX_NODES < len(grid)
    return page("firmware.html", title="Firmware", page="firmware", who=who, f=f, query=query,
                summary=compliance.summary(rows), comps=comps[:MAX_COMPONENTS], cut=len(comps) > MAX_COMPONENTS,
                grid=grid[start:start + MAX_NODES], total=len(grid), unknown=unknown[:500], unknown_n=len(unknown),
                page_no=page_no, more=more)
