"""Node reads for the API without the ORM (issue 14): `GET /api/v1/nodes/{ref}` and the node pages.

The same answers as `service.get_node`/`service.list_nodes` + `service.to_out` (a test compares
them on both databases), built from SQLAlchemy Core rows on one pooled connection: no Session, no
identity map, no unit of work, nothing to commit. Loading ORM objects (node, profile, interfaces)
and validating them into `NodeOut` cost ~0.7 ms for one node and ~10 ms for a page of 100 at
10,000 nodes; here it is one statement for the nodes, with the profile's name and their interfaces
(a JSON array from a correlated subquery: `json_agg` on PostgreSQL, `json_group_array` on SQLite).
Values pass through the columns' types (JSON, UTC datetimes) as with the ORM, and the
answer is serialized by pydantic's `NodeOut` (constructed, not validated: the rows are already the
database's own values), so the JSON is byte for byte what the ORM path gives. Never the BMC
password: only whether one is set.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import product
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection, Dialect

from dgxie.dbdirect import Direct
from dgxie.errors import Invalid, NotFound
from dgxie.models import Interface, Node, NodeTag, Profile
from dgxie.nodes.schemas import BmcOut, InterfaceOut, NodeOut, NodePage
from dgxie.nodes.service import check_page, mac_of_ref

N, IFS, P, TAGS = Node.__table__, Interface.__table__, Profile.__table__, NodeTag.__table__
_COLUMNS = (N.c.id, N.c.hostname, N.c.ip, P.c.name.label("profile"), N.c.role, N.c.state, N.c.tags, N.c.facts,
            N.c.vars, N.c.bmc_url, N.c.bmc_username, N.c.bmc_password_enc.is_not(None).label("password_set"),
            N.c.state_changed_at, N.c.created_at, N.c.updated_at)


def interfaces_column(dialect: str) -> Any:
    """The node's interfaces as one JSON array of `[mac, name]` in id order, a correlated scalar
    subquery (one statement for the nodes and their interfaces, not two: a round trip fewer)."""
    i = IFS.alias("i")
    if dialect == "postgresql":
        pairs = func.json_agg(aggregate_order_by(func.json_build_array(i.c.mac, i.c.name), i.c.id))
        return select(func.coalesce(pairs, literal_column("'[]'::json"))).where(
            i.c.node_id == N.c.id).scalar_subquery()
    # SQLite: an aggregate over an ordered subquery keeps its order (the subquery is not flattened
    # into an aggregate query); json_group_array of no rows is '[]'
    ordered = select(i.c.mac, i.c.name).where(i.c.node_id == N.c.id).order_by(i.c.id).correlate(N).subquery()
    return select(func.json_group_array(func.json_array(ordered.c.mac, ordered.c.name))).scalar_subquery()


class _Statements:
    """A dialect's statements, built once (building and cache-keying them was a fifth of a read)."""

    def __init__(self, dialect: Dialect) -> None:
        self.base = base = select(*_COLUMNS, interfaces_column(dialect.name).label("ifaces")).select_from(
            N.outerjoin(P, N.c.profile_id == P.c.id))
        # one node: on the driver's cursor (`dbdirect`: SQLAlchemy's execution was 40% of its CPU)
        self.by_hostname = Direct(base.where(N.c.hostname == bindparam("hostname")), dialect)
        self.by_mac = Direct(base.where(N.c.id == select(IFS.c.node_id).where(
            IFS.c.mac == bindparam("mac")).scalar_subquery()), dialect)
        self.by_ids = base.where(N.c.id.in_(bindparam("ids", expanding=True)))
        self.pages = {given: self._page(*given) for given in product((False, True), repeat=4)}

    def _page(self, state: bool, role: bool, tag: bool, profile: bool) -> tuple[Any, Any]:
        """The page statement and the count for filters given or not (their values, `limit` and
        `offset` are bound parameters): one statement for the page's ids from the hostname index
        alone (a subquery: a join walked every skipped row, 12 ms at offset 5,000 of 10,000 on
        SQLite), their rows, and the total. Built once per combination: building and cache-keying
        it per request was a tenth of a page's CPU."""
        where = []
        if state:
            where.append(N.c.state == bindparam("state"))
        if role:
            where.append(N.c.role == bindparam("role"))
        if tag:
            where.append(N.c.id.in_(select(TAGS.c.node_id).where(TAGS.c.tag == bindparam("tag"))))
        if profile:
            where.append(N.c.profile_id == bindparam("profile_id"))
        count = select(func.count()).select_from(N).where(*where).correlate(None)
        ids = (select(N.c.id).where(*where).order_by(N.c.hostname).limit(bindparam("limit"))
               .offset(bindparam("offset")).correlate(None))
        return (self.base.add_columns(count.scalar_subquery().label("total")).where(N.c.id.in_(ids))
                .order_by(N.c.hostname)), count


_STATEMENTS: dict[str, _Statements] = {}


def _statements(conn: Connection) -> _Statements:
    name = conn.dialect.name
    found = _STATEMENTS.get(name)
    if found is None:
        found = _STATEMENTS[name] = _Statements(conn.dialect)
    return found


M = TypeVar("M", bound=BaseModel)


def _built(cls: type[M], **values: Any) -> M:
    """`cls.model_construct(**values)` for values that name every field (5x cheaper: a page of 100
    nodes built 400 models, a fifth of its CPU). What `model_construct` sets, without its walk over
    the fields for defaults and aliases; `test_node_reads` compares the JSON with the ORM path's."""
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", values)
    object.__setattr__(model, "__pydantic_fields_set__", set(values))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


def _outs(rows: Sequence[Any]) -> list[NodeOut]:
    """`NodeOut`s of `rows` (each with its `ifaces` column: a JSON array of `[mac, name]`)."""
    out = []
    for r in rows:
        pairs = r.ifaces if isinstance(r.ifaces, list) else json.loads(r.ifaces)
        its = [_built(InterfaceOut, mac=mac, name=name) for mac, name in pairs]
        out.append(_built(
            NodeOut, id=r.id, hostname=r.hostname, mac=its[0].mac if its else None, ip=r.ip, profile=r.profile,
            role=r.role, state=r.state, tags=list(r.tags), interfaces=its,
            bmc=_built(BmcOut, url=r.bmc_url, username=r.bmc_username, password_set=bool(r.password_set)),
            facts=dict(r.facts), vars=dict(r.vars), state_changed_at=r.state_changed_at, created_at=r.created_at,
            updated_at=r.updated_at))
    return out


def get(conn: Connection, ref: str) -> NodeOut:
    """A node by hostname or by any of its MACs (any accepted MAC spelling), as `service.get_node`."""
    st = _statements(conn)
    rows = st.by_hostname.all(conn, {"hostname": ref.strip().lower()})
    mac = mac_of_ref(ref) if not rows else None
    if mac is not None:
        rows = st.by_mac.all(conn, {"mac": mac})
    if not rows:
        raise NotFound(f"no node {ref!r}")
    return _outs(rows[:1])[0]


def many(conn: Connection, ids: Sequence[int]) -> dict[int, NodeOut]:
    """The nodes with these ids (those that exist), by id."""
    rows = conn.execute(_statements(conn).by_ids, {"ids": list(ids)}).all() if ids else []
    return {n.id: n for n in _outs(rows)}


def page(conn: Connection, *, state: str | None = None, role: str | None = None, tag: str | None = None,
         profile: str | None = None, limit: int = 100, offset: int = 0) -> NodePage:
    """One page of nodes ordered by hostname and the total that match, as `service.list_nodes`
    (the same filters, the same refusals)."""
    check_page(limit=limit, offset=offset, state=state)
    values: dict[str, Any] = {"state": state, "role": role, "tag": tag, "limit": limit, "offset": offset}
    if profile is not None:
        values["profile_id"] = conn.execute(select(P.c.id).where(P.c.name == profile)).scalar()
        if values["profile_id"] is None:
            raise Invalid(f"unknown profile {profile!r}")
    statement, count = _statements(conn).pages[state is not None, role is not None, tag is not None,
                                                profile is not None]
    rows = conn.execute(statement, values).all()
    total = rows[0].total if rows else (conn.execute(count, values).scalar() or 0) if offset else 0
    return NodePage.model_construct(items=_outs(rows), total=total, limit=limit, offset=offset)
