"""A cheap signal that node reads may have changed: the read caches' key (issue 14).

`generation(session)` changes whenever a node, one of its interfaces or a profile changes:
- every inventory change records an event (dgxie.events), so the newest event id moves; the count
  of the newest 1,000 ids catches a transaction that committed a lower id after a higher one was
  visible (PostgreSQL sequences do not commit in order; the same rule as dhcpsync.signature);
- a node row written without an event (install progress, facts) moves `max(nodes.updated_at)`
  (`onupdate`); a delete always records `node.delete` (`service.delete_node`, the one way nodes
  are deleted), so it moves the newest event id (no count of the nodes: it scanned every row,
  0.7 ms of the 0.8 ms this cost at 10,000 nodes);
- a profile edit moves `max(profiles.updated_at)`.
Index-only lookups in one statement (one round trip), ~0.15 ms on SQLite at 10,000 nodes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from dgxie.models import Event, Node, Profile


def _statement() -> Any:
    top = select(func.max(Event.id)).scalar_subquery()
    return select(
        top,
        select(func.count(Event.id)).where(Event.id > func.coalesce(top, 0) - 1000).scalar_subquery(),
        select(func.max(Node.updated_at)).scalar_subquery(),
        select(func.max(Profile.updated_at)).scalar_subquery())


_STATEMENT = _statement()  # built once: building it was half the cost of a cached page


def generation(session: Session | Connection) -> tuple[Any, ...]:
    return tuple(session.execute(_STATEMENT).one())
