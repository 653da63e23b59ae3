"""/api/v1/nodes: the node inventory and each node's events."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from dgxie import events
from dgxie.api import admission, readcache, readers
from dgxie.api.auth import Operator, Viewer
from dgxie.api.deps import SessionDep, SiteDep, get_ctx
from dgxie.api.limits import MAX_INT, JsonRoute
from dgxie.api.openapi import conflict, example
from dgxie.boot.state import State
from dgxie.events import EventOut
from dgxie.nodes import bulk, enroll_batch, reads, service
from dgxie.nodes.schemas import NodeBrief, NodeBulkIn, NodeBulkOut, NodeCreate, NodeOut, NodePage, NodeUpdate
from dgxie.tokens import Principal

router = APIRouter(prefix="/nodes", tags=["nodes"], route_class=JsonRoute)
TAKEN = conflict("the hostname, a MAC or the IP belongs to another node")
EVENT = {"id": 42, "time": "2026-11-30T08:00:00Z", "actor": "installer", "node": "gpu01", "kind": "state",
         "from_state": "installing", "to_state": "installed", "reason": "installer finished", "data": {}}


def _json(model: BaseModel, status: int = 200) -> Response:
    """`model` serialized once, by itself (issue 14): a route returning the model has FastAPI
    validate and serialize it a second time through `response_model`, which was half the CPU
    of a 100-node page. The route keeps `response_model` for the OpenAPI schema (so do the
    cached reads, `api.readcache`)."""
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


@router.get("", response_model=NodePage)
async def list_nodes(request: Request, _: Principal = Viewer, state: State | None = None, role: str | None = None,
                     tag: str | None = None, profile: str | None = None,
                     limit: int = Query(100, ge=1, le=service.MAX_PAGE),
                     offset: int = Query(0, ge=0, le=MAX_INT)) -> Response:
    """One page of nodes ordered by hostname, filtered by state, role, tag and profile; `total`
    counts every match. Carries an `ETag`; `If-None-Match` with it is 304 while nothing changed."""
    return await read(request, list_answer(request, state, role, tag, profile, limit, offset))


@router.post("", response_model=NodeOut, status_code=201, responses=TAKEN)
async def create_node(request: Request, body: NodeCreate, who: Principal = Operator) -> Response:
    """Enroll a node (or record it `discovered`); its boot token is made here. Facts and vars are
    bounded (docs/api.md). Enrollments arriving together are written together, each answered as
    if alone (`nodes.enroll_batch`)."""
    return await enroll_answer(request, body, who.actor)


async def enroll_answer(request: Request, body: NodeCreate, actor: str) -> Response:
    """201 and the enrolled node, through the app's batcher; shared by the route and `api.hotpath`.
    While it waits for the batch writer (its own connection), the request's admission slot is
    given back, unless the batcher is full."""
    batcher = _batcher(request)
    if batcher.room:
        admission.give_back(request.scope)
    return _json(await batcher.enroll(body, actor), 201)


def _batcher(request: Request) -> enroll_batch.EnrollBatcher:
    """The app's batcher (made on first use: one per app and event loop)."""
    state = request.app.state
    batcher: enroll_batch.EnrollBatcher | None = getattr(state, "enroll_batcher", None)
    if batcher is None:
        ctx = get_ctx(request)
        batcher = state.enroll_batcher = enroll_batch.EnrollBatcher(ctx.sessions, ctx.site)
    return batcher


@router.post("/bulk", response_model=NodeBulkOut, status_code=201,
             responses=conflict("a hostname, MAC or IP belongs to another node or row; every such row is named"))
def create_nodes(body: NodeBulkIn, s: SessionDep, site: SiteDep, who: Principal = Operator) -> Response:
    """Enroll up to 5,000 nodes in one transaction: all of them, or none and one error naming every
    bad row (`nodes[i]: ...`). Each node is enrolled as by `POST /api/v1/nodes`, with its event."""
    rows = [bulk.Row(f"nodes[{i}]", n) for i, n in enumerate(body.nodes)]
    made = bulk.create_nodes(s, site, rows, actor=who.actor)
    return _json(NodeBulkOut.model_construct(created=len(made), nodes=[NodeBrief.model_construct(
        id=n.id, hostname=n.hostname, mac=n.mac, profile=n.profile, state=n.state) for n in made]), 201)


@router.get("/{ref}", response_model=NodeOut)
async def get_node(request: Request, ref: str, _: Principal = Viewer) -> Response:
    """One node by hostname or MAC (any of its interfaces). Not cached: one indexed lookup costs
    less than the cache's change signal (measured, bench/RESULTS.md)."""
    return await read(request, get_answer(ref))


def list_answer(request: Request, state: str | None, role: str | None, tag: str | None, profile: str | None,
                limit: int, offset: int) -> Callable[[Connection], Response]:
    """The answer to a node page, to run on the node readers (`read`): from the app's read cache,
    else built by `nodes.reads`, with no ORM. Shared by the route and `api.hotpath`."""
    cache, arrived = readcache.of(request), time.monotonic()

    def answer(conn: Connection) -> Response:
        return cache.answer(request, conn, ("list", state, role, tag, profile, limit, offset), lambda: reads.page(
            conn, state=state, role=role, tag=tag, profile=profile, limit=limit, offset=offset), arrived=arrived)

    return answer


def get_answer(ref: str) -> Callable[[Connection], Response]:
    """The answer to one node by hostname or MAC, to run on the node readers (`read`)."""
    return lambda conn: _json(reads.get(conn, ref))


async def read(request: Request, fn: Callable[[Connection], Response]) -> Response:
    """`fn(conn)` on the app's node readers: threads of their own, each keeping its connection
    between reads (`api.readers`)."""
    return await readers.of(request).run(fn)


@router.patch("/{ref}", response_model=NodeOut, responses=TAKEN)
def update_node(ref: str, body: NodeUpdate, s: SessionDep, site: SiteDep, who: Principal = Operator) -> NodeOut:
    """Change the fields present; `null` clears one. The BMC password is write-only; facts read from
    the machine (`hardware`, `commissioning`) are kept."""
    node = service.get_node(s, ref)
    return service.to_out(service.update_node(s, site, node, body, actor=who.actor))


@router.delete("/{ref}", status_code=204)
def delete_node(ref: str, s: SessionDep, who: Principal = Operator) -> Response:
    """Forget the node; its events stay."""
    service.delete_node(s, service.get_node(s, ref), actor=who.actor)
    return Response(status_code=204)


@router.get("/{ref}/events", response_model=list[EventOut], responses=example([EVENT]))
def node_events(ref: str, s: SessionDep, _: Principal = Viewer, after: int = Query(0, ge=0, le=MAX_INT),
                limit: int = Query(100, ge=1, le=1000)) -> list[EventOut]:
    """The node's events in order, after the event id `after`."""
    return events.list_events(s, node=service.get_node(s, ref), after_id=after, limit=limit)
