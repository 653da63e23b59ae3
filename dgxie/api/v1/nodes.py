"""/api/v1/nodes: the node inventory and each node's events."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from dgxie import events
from dgxie.api.auth import Operator, Viewer
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.events import EventOut
from dgxie.nodes import service
from dgxie.nodes.schemas import NodeCreate, NodeOut, NodePage, NodeUpdate
from dgxie.tokens import Principal

router = APIRouter(prefix="/nodes", tags=["nodes"])


@router.get("", response_model=NodePage)
def list_nodes(s: SessionDep, _: Principal = Viewer, state: str | None = None, role: str | None = None,
               tag: str | None = None, profile: str | None = None,
               limit: int = Query(100, ge=1, le=service.MAX_PAGE), offset: int = Query(0, ge=0)) -> NodePage:
    nodes, total = service.list_nodes(s, state=state, role=role, tag=tag, profile=profile, limit=limit,
                                      offset=offset)
    return NodePage(items=[service.to_out(n) for n in nodes], total=total, limit=limit, offset=offset)


@router.post("", response_model=NodeOut, status_code=201)
def create_node(body: NodeCreate, s: SessionDep, site: SiteDep, who: Principal = Operator) -> NodeOut:
    return service.to_out(service.create_node(s, site, body, actor=who.actor))


@router.get("/{ref}", response_model=NodeOut)
def get_node(ref: str, s: SessionDep, _: Principal = Viewer) -> NodeOut:
    return service.to_out(service.get_node(s, ref))


@router.patch("/{ref}", response_model=NodeOut)
def update_node(ref: str, body: NodeUpdate, s: SessionDep, site: SiteDep, who: Principal = Operator) -> NodeOut:
    node = service.get_node(s, ref)
    return service.to_out(service.update_node(s, site, node, body, actor=who.actor))


@router.delete("/{ref}", status_code=204)
def delete_node(ref: str, s: SessionDep, who: Principal = Operator) -> Response:
    service.delete_node(s, service.get_node(s, ref), actor=who.actor)
    return Response(status_code=204)


@router.get("/{ref}/events", response_model=list[EventOut])
def node_events(ref: str, s: SessionDep, _: Principal = Viewer, after: int = Query(0, ge=0),
                limit: int = Query(100, ge=1, le=1000)) -> list[EventOut]:
    return events.list_events(s, node=service.get_node(s, ref), after_id=after, limit=limit)
