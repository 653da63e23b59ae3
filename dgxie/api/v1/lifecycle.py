"""/api/v1/nodes/{name}/reprovision, /enroll, /erase and the live event stream (Server-Sent Events).

The stream itself (polling, heartbeat, Last-Event-ID) is `dgxie.api.sse`, shared with the dashboard.
"""

from __future__ import annotations

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from dgxie import events
from dgxie.api.auth import Operator, Viewer
from dgxie.api.deps import get_ctx
from dgxie.api.limits import MAX_INT, JsonRoute
from dgxie.api.openapi import conflict, example
from dgxie.api.sse import event_stream, resume_after
from dgxie.db import session_scope
from dgxie.events import EventOut
from dgxie.models import Node
from dgxie.nodes import service
from dgxie.nodes.enroll import enroll_node, erase_node
from dgxie.nodes.reprovision import reprovision_node
from dgxie.nodes.schemas import EnrollIn, NodeOut, ReprovisionOut
from dgxie.tokens import Principal

router = APIRouter(prefix="/nodes", tags=["nodes"], route_class=JsonRoute)


@router.post("/{ref}/reprovision", response_model=ReprovisionOut,
             responses=conflict("the node is discovered (enroll it first), or its drain hook failed"))
def reprovision(ref: str, request: Request, who: Principal = Operator) -> ReprovisionOut:
    """Back to `enrolled` with a new boot token; then, with a BMC, PXE-once + power cycle. 200 once
    the reprovision is committed, whatever the BMC did: `power_cycle` says (null: no BMC; `ok`
    false: `error` names the step that failed, and the node reinstalls at its next network boot)."""
    ctx = get_ctx(request)
    return reprovision_node(ctx.sessions, ctx.site, ref, actor=who.actor, hooks=ctx.reprovision)


@router.post("/{ref}/enroll", response_model=NodeOut,
             responses=conflict("the node is not discovered, or the hostname or IP is taken"))
def enroll(ref: str, data: EnrollIn, request: Request, who: Principal = Operator) -> NodeOut:
    """A discovered node (facts and MACs kept) becomes enrolled with a profile; 409 for any other state."""
    ctx = get_ctx(request)
    return enroll_node(ctx.sessions, ctx.site, ref, data, actor=who.actor)


@router.post("/{ref}/erase", response_model=ReprovisionOut,
             responses=conflict("the node's state cannot go to erasing"))
def erase(ref: str, request: Request, who: Principal = Operator) -> ReprovisionOut:
    """Mark the node `erasing` (new boot token); its next network boot runs the agent, which wipes
    every disk and returns it to `discovered`. With a BMC: PXE-once and a power cycle now, reported
    in `power_cycle` as for a reprovision."""
    ctx = get_ctx(request)
    return erase_node(ctx.sessions, ctx.site, ref, actor=who.actor, hooks=ctx.reprovision)


STREAM_EXAMPLE = ('retry: 1000\n\nid: 42\nevent: state\ndata: {"id": 42, "kind": "state", "node": "gpu01", '
                  '"from_state": "installing", "to_state": "installed", ...}\n\n: heartbeat\n\n')


@router.get("/{ref}/events/stream", response_class=StreamingResponse,
            responses=example(STREAM_EXAMPLE, media="text/event-stream"))
def stream_events(ref: str, request: Request, _: Principal = Viewer, after: int = Query(0, ge=0, le=MAX_INT),
                  timeout: float = Query(300, gt=0, le=3600), poll: float = Query(1.0, ge=0.1, le=30),
                  last_event_id: str | None = Header(None)) -> StreamingResponse:
    """The node's events as Server-Sent Events, from after `after` (or the `Last-Event-ID` header);
    a heartbeat comment every 15 s; the stream ends after `timeout` seconds."""
    ctx = get_ctx(request)
    after = resume_after(after, last_event_id)
    with session_scope(ctx.sessions) as s:
        node_id = service.get_node(s, ref).id

    def fetch(after_id: int, limit: int) -> list[EventOut]:
        with session_scope(ctx.sessions) as s:
            node = s.get(Node, node_id)
            return [] if node is None else events.list_events(s, node=node, after_id=after_id, limit=limit)

    return event_stream(request, fetch, after=after, timeout=timeout, poll=poll)
