"""The event log: recording and reading events (one row per change).

Every change writes its event row in the caller's transaction (`record`), so a change and its log
entry land together or not at all. Used by every service package; it depends only on the models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dgxie.db import CHANGED
from dgxie.models import Event, Node


class EventOut(BaseModel):
    id: int
    time: datetime
    actor: str
    node: str | None
    kind: str
    from_state: str | None
    to_state: str | None
    reason: str
    data: dict[str, Any]


def record(session: Session, *, actor: str, kind: str, node: Node | None = None, hostname: str | None = None,
           from_state: str | None = None, to_state: str | None = None, reason: str = "",
           data: dict[str, Any] | None = None) -> Event:
    """Add one event to the session (committed with the change it describes); marks the
    transaction as a change (`db.on_commit_of_change`: the iPXE script cache drops its scripts)."""
    ev = Event(actor=actor, kind=kind, node_id=node.id if node is not None else None,
               hostname=node.hostname if node is not None else hostname, from_state=from_state,
               to_state=to_state, reason=reason, data=data or {})
    session.add(ev)
    session.info[CHANGED] = True
    return ev


def to_out(ev: Event) -> EventOut:
    return EventOut(id=ev.id, time=ev.time, actor=ev.actor, node=ev.hostname, kind=ev.kind,
                    from_state=ev.from_state, to_state=ev.to_state, reason=ev.reason, data=ev.data)


def list_events(session: Session, *, node: Node | None = None, after_id: int = 0, limit: int = 100,
                kind: str | None = None) -> list[EventOut]:
    """Events in id order, optionally for one node, after a given id (for streaming)."""
    q = select(Event).where(Event.id > after_id).order_by(Event.id).limit(limit)
    if node is not None:
        q = q.where(Event.node_id == node.id)
    if kind is not None:
        q = q.where(Event.kind == kind)
    return [to_out(e) for e in session.scalars(q)]


def search_events(session: Session, *, hostname: str | None = None, actor: str | None = None,
                  kind: str | None = None, before_id: int | None = None, after_id: int | None = None,
                  limit: int = 100) -> list[EventOut]:
    """The audit log filtered by node hostname, actor and kind (exact, or a prefix when it ends
    with `*`, e.g. `node.*`): newest first, before `before_id` (paging back); or, with `after_id`,
    oldest first after it (a live stream)."""
    q = select(Event).limit(limit)
    q = q.where(Event.id > after_id).order_by(Event.id) if after_id is not None else q.order_by(Event.id.desc())
    for col, value in ((Event.hostname, hostname), (Event.actor, actor), (Event.kind, kind)):
        if value:
            q = q.where(col.startswith(value[:-1], autoescape=True) if value.endswith("*") else col == value)
    if before_id is not None:
        q = q.where(Event.id < before_id)
    return [to_out(e) for e in session.scalars(q)]


def last_event_id(session: Session) -> int:
    """The id of the newest event (0 when none): where a live stream starts from."""
    return session.scalar(select(func.max(Event.id))) or 0
