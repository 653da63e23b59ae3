"""The dashboard's pages (GET, server-rendered): fleet, node, events; and its live stream.

Every page needs a signed-in session (else a redirect to /ui/login); every role may read. Bad
query parameters are the API's 422 JSON error.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from dgxie import events
from dgxie.api.deps import get_ctx
from dgxie.api.limits import MAX_INT
from dgxie.api.sse import event_stream, unnamed
from dgxie.db import session_scope
from dgxie.errors import Unauthorized
from dgxie.events import EventOut
from dgxie.firmware import compliance
from dgxie.firmware.service import STATUSES
from dgxie.nodes import fleet, service
from dgxie.web.auth import signed_in
from dgxie.web.render import page, redirect

router = APIRouter(prefix="/ui", include_in_schema=False)
ACTIONS = (("power-on", "Power on", "Power on {h}?"), ("power-off", "Power off", "Power off {h} now?"),
           ("power-cycle", "Power cycle", "Power cycle {h} now?"), ("pxe-once", "PXE once", "Boot {h} from PXE once?"),
           ("reprovision", "Reprovision", "Reprovision {h}? It reinstalls at its next boot."),
           ("drain", "Drain", "Drain {h} from its scheduler?"), ("resume", "Resume", "Resume {h} in its scheduler?"),
           ("erase", "Erase", "Erase {h}? Its next network boot wipes every disk."))


@router.get("/")
async def fleet_page(request: Request, q: str = "", state: str = "", role: str = "", profile: str = "",
                     tag: str = "", firmware: str = Query("", max_length=16), sort: str = "hostname",
                     desc: bool = False, page_no: int = Query(1, alias="page", ge=1, le=1_000_000)) -> Response:
    """Counts by state and role, and one page of the node table (search, filters, sort). The
    firmware filter (a compliance status: the nodes with at least one component so) costs a
    compliance computation over the fleet (`dgxie.firmware.compliance.rows`)."""
    who = await signed_in(request)
    if who is None:
        return redirect("/ui/login")
    ctx = get_ctx(request)

    def load() -> tuple[fleet.FleetQuery, fleet.FleetPage, dict[str, list[str]], int]:
        with session_scope(ctx.sessions) as s:
            hosts = (frozenset(r["node"] for r in compliance.rows(s, ctx.site, status=firmware))
                     if firmware else None)
            fq = fleet.FleetQuery(q=q, state=state, role=role, profile=profile, tag=tag, sort=sort, desc=desc,
                                  page=page_no, hostnames=hosts)
            return fq, fleet.fleet_page(s, fq), fleet.choices(s) | {"firmware": list(STATUSES)}, events.last_event_id(s)

    fq, fp, choices, last = await run_in_threadpool(load)
    base = {k: v for k, v in (("q", q), ("state", state), ("role", role), ("profile", profile), ("tag", tag),
                              ("firmware", firmware)) if v}

    def link(**over: Any) -> str:
        args = base | {"sort": fq.sort, "desc": fq.desc, "page": fq.page} | over
        args = {k: ("1" if v is True else v) for k, v in args.items() if v not in (False, "", None)}
        return "/ui/?" + urlencode(args)

    return page("fleet.html", request=request, title="Fleet", page="fleet", who=who, fq=fq, fw=firmware, page_=fp,
                choices=choices, link=link, pages=max(1, math.ceil(fp.total / fq.size)),
                stream=f"/ui/stream?after={last}")


@router.get("/nodes/{ref}")
async def node_page(ref: str, request: Request) -> Response:
    """One node: identity, interfaces, BMC (never the password), facts, firmware verdicts,
    the timeline of its events, and the actions (operators only)."""
    who = await signed_in(request)
    if who is None:
        return redirect("/ui/login")
    ctx = get_ctx(request)

    def load() -> tuple[Any, list[EventOut], list[dict[str, Any]], int]:
        with session_scope(ctx.sessions) as s:
            node = service.get_node(s, ref)
            timeline = events.search_events(s, hostname=node.hostname, limit=200)
            fw = compliance.rows(s, ctx.site, node=node.hostname)
            return service.to_out(node), timeline, fw, events.last_event_id(s)

    node, timeline, fw, last = await run_in_threadpool(load)
    actions = [(a, label, confirm.format(h=node.hostname)) for a, label, confirm in ACTIONS]
    return page("node.html", request=request, title=node.hostname, page="node", who=who, node=node, timeline=timeline,
                firmware=[r for r in fw if r["component"] or r["status"] != "unknown"], actions=actions,
                stream=f"/ui/stream?node={node.hostname}&after={last}")


@router.get("/events")
async def events_page(request: Request, node: str = Query("", max_length=63), actor: str = Query("", max_length=128),
                      kind: str = Query("", max_length=64), before: int | None = Query(None, ge=1, le=MAX_INT)
                      ) -> Response:
    """The audit log, newest first, filtered by node, actor and kind (`node.*`: a prefix)."""
    who = await signed_in(request)
    if who is None:
        return redirect("/ui/login")
    ctx = get_ctx(request)

    def load() -> list[EventOut]:
        with session_scope(ctx.sessions) as s:
            return events.search_events(s, hostname=node.lower() or None, actor=actor or None, kind=kind or None,
                                        before_id=before, limit=100)

    rows = await run_in_threadpool(load)
    f = {"node": node, "actor": actor, "kind": kind}
    older = ("/ui/events?" + urlencode({k: v for k, v in f.items() if v} | {"before": rows[-1].id})
             if len(rows) == 100 else None)
    return page("events.html", title="Events", page="events", who=who, events=rows, f=f, older=older)


@router.get("/stream")
async def stream(request: Request, node: str = Query("", max_length=63), after: int = Query(0, ge=0, le=MAX_INT),
                 timeout: float = Query(300, gt=0, le=3600)) -> Response:
    """The fleet's events (or one node's) as unnamed Server-Sent Events, for the pages' live updates."""
    who = await signed_in(request)
    if who is None:
        raise Unauthorized("not signed in")
    ctx = get_ctx(request)
    host = node.lower() or None
    if host is not None:
        def exists() -> None:
            with session_scope(ctx.sessions) as s:
                service.get_node(s, host)
        await run_in_threadpool(exists)

    def fetch(after_id: int, limit: int) -> list[EventOut]:
        with session_scope(ctx.sessions) as s:
            return events.search_events(s, hostname=host, after_id=after_id, limit=limit)

    slots = request.app.state.web_streams
    if not slots.take():
        return JSONResponse({"detail": "too many open event streams, retry later"}, status_code=503,
                            headers={"Retry-After": "5"})
    return event_stream(request, fetch, after=after, timeout=timeout, poll=1.0, fmt=unnamed, on_close=slots.give)
