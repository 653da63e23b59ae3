"""The inventory lookups behind enrolling many nodes at once (`nodes.bulk`): who already holds a
hostname, MAC or IP, and the profiles rows name or match, read with Core in a few queries.

On PostgreSQL the three "already taken" lookups are one prepared statement of three `= ANY(array)`
branches (`UNION ALL`), built once: a group commit of single enrolments (`nodes.enroll_batch`) ran
three statements, each built, cache-keyed and sent anew (~4 ms of a 12 ms batch of one on a slow
core). Elsewhere (SQLite) one `IN` query per `CHUNK` values and kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, any_, bindparam, literal_column, select, union_all
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import ARRAY

from dgxie.catalog.profiles import MAC_MATCH_VAR
from dgxie.models import Interface, Node, Profile
from dgxie.nodes.schemas import NodeCreate

CHUNK = 500  # values per IN (...) query: far under SQLite's and PostgreSQL's parameter limits

_N, _I, _P = Node.__table__, Interface.__table__, Profile.__table__  # Core: no ORM loading for the checks


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), CHUNK):
        yield values[i:i + CHUNK]


def among(conn: Connection, column: ColumnElement[Any], values: Sequence[Any]) -> Iterator[ColumnElement[bool]]:
    """`column IN values` as the fewest conditions, one query each: on PostgreSQL one
    `column = ANY(array)` (a single parameter, however many values: twenty 500-value INs took
    ~40 ms of client CPU per 10,000 values, the array ~5 ms); elsewhere one IN per CHUNK values."""
    if conn.dialect.name == "postgresql":
        if values:
            yield column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
        return
    for part in _chunks(values):
        yield column.in_(part)


def _array(name: str, column: ColumnElement[Any]) -> Any:
    return any_(bindparam(name, type_=ARRAY(column.type)))


# (kind, value, holder) for every hostname, MAC and IP given that a node holds: PostgreSQL only
_TAKEN_PG = union_all(
    select(literal_column("'hostname'"), _N.c.hostname, _N.c.hostname).where(
        _N.c.hostname == _array("names", _N.c.hostname)),
    select(literal_column("'MAC'"), _I.c.mac, _N.c.hostname).join(_N, _I.c.node_id == _N.c.id).where(
        _I.c.mac == _array("macs", _I.c.mac)),
    select(literal_column("'IP'"), _N.c.ip, _N.c.hostname).where(_N.c.ip == _array("ips", _N.c.ip)))


def taken(conn: Connection, nodes: Sequence[NodeCreate]) -> dict[tuple[str, str], str]:
    """(kind, value) -> the enrolled node holding it, for every hostname, MAC and IP of `nodes`
    (kind: "hostname", "MAC" or "IP")."""
    names = sorted({d.hostname for d in nodes})
    macs = sorted({m for d in nodes for m in [d.mac, *[i.mac for i in d.interfaces]]})
    ips = sorted({d.ip for d in nodes if d.ip})
    if conn.dialect.name == "postgresql":
        rows = conn.execute(_TAKEN_PG, {"names": names, "macs": macs, "ips": ips})
        return {(kind, str(value)): holder for kind, value, holder in rows}
    held: dict[tuple[str, str], str] = {}
    for cond in among(conn, _N.c.hostname, names):
        held.update((("hostname", h), h) for h in conn.execute(select(_N.c.hostname).where(cond)).scalars())
    for cond in among(conn, _I.c.mac, macs):
        q = select(_I.c.mac, _N.c.hostname).join(_N, _I.c.node_id == _N.c.id).where(cond)
        held.update((("MAC", m), h) for m, h in conn.execute(q))
    for cond in among(conn, _N.c.ip, ips):
        held.update((("IP", str(ip)), h) for ip, h in conn.execute(select(_N.c.ip, _N.c.hostname).where(cond)))
    return held


@dataclass(frozen=True)
class ProfileRef:
    """What enrolment needs of a profile (read with Core: loading ORM profiles, each with its image
    joined, was an eighth of a small batch)."""

    id: int
    name: str
    role: str | None
    vars: dict[str, Any]


class Profiles:
    """The profiles a batch names, and DGXIE's `mac_match` rule (catalog.profiles.profile_for_mac)
    with every profile loaded and every pattern compiled once: one per transaction, shared by
    the checks and the writes (`bulk.problems`, `bulk.create_nodes`)."""

    COLUMNS = (_P.c.id, _P.c.name, _P.c.role, _P.c.vars)
    ALL = select(*COLUMNS).order_by(_P.c.id)  # built once: building and cache-keying it was ~5% of a batch

    def __init__(self, conn: Connection, nodes: Sequence[NodeCreate]) -> None:
        wanted = sorted({d.profile for d in nodes if d.profile})
        self.by_name: dict[str, ProfileRef] = {}
        self._conn = conn
        for cond in among(conn, _P.c.name, wanted):
            self.by_name.update((r.name, ProfileRef(*r)) for r in conn.execute(select(*self.COLUMNS).where(cond)))
        self._matchers: list[tuple[re.Pattern[str], ProfileRef]] | None = None

    def for_mac(self, mac: str) -> ProfileRef | None:
        if self._matchers is None:
            self._matchers = []
            for r in self._conn.execute(self.ALL):
                pattern = (r.vars or {}).get(MAC_MATCH_VAR)
                if isinstance(pattern, str):
                    try:
                        self._matchers.append((re.compile(pattern), ProfileRef(*r)))
                    except re.error:
                        continue
        if not self._matchers:
            return None
        return next((p for rx, p in self._matchers if rx.match(mac.lower())), None)
