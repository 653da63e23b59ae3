"""Enroll many nodes in one transaction (issue 14: 5,000 nodes/s for `POST /api/v1/nodes/bulk` and
`dgxie node import`; one `create_node` per row ran four lookups, scanned every profile for a
`mac_match` and flushed once per node: ~190 nodes/s).

The rules are `service.create_node`'s, checked for the whole batch with a handful of queries:
hostnames, MACs and IPs unique in the batch and against the inventory (one `IN` query per 500
values), IPs inside the configured subnets, known profiles and roles, enrolled or discovered
only. Every problem of every row is collected first and nothing is written unless there are
none; then the nodes, their interfaces and one `node.create` event each are inserted in bulk
(the audit log keeps a line per node, as for a single enroll).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, any_, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import ARRAY

from dgxie.boot.state import INITIAL, State
from dgxie.catalog.profiles import MAC_MATCH_VAR
from dgxie.db import CHANGED
from dgxie.errors import Conflict, DgxieError, Invalid
from dgxie.models import Event, Interface, Node, Profile
from dgxie.nodes.bmcs import apply_bmc
from dgxie.nodes.bulk_write import insert_rows
from dgxie.nodes.credentials import new_boot_nonce
from dgxie.nodes.schemas import NodeCreate
from dgxie.nodes.service import check_ip
from dgxie.site import Site

CHUNK = 500  # values per IN (...) query: far under SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True)
class Row:
    where: str  # how an error names the row: "nodes[3]", "racks.csv:12"
    data: NodeCreate


@dataclass(frozen=True)
class Problem:
    row: Row
    status: int  # 409: a value another node or row holds; 422: the rest
    detail: str

    @property
    def line(self) -> str:
        return f"{self.row.where}: {self.detail}"


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


_N, _I, _P = Node.__table__, Interface.__table__, Profile.__table__  # Core: no ORM loading for the checks


def _taken(session: Session, rows: Sequence[Row]) -> dict[tuple[str, str], str]:
    """(kind, value) -> the enrolled node holding it, for every hostname, MAC and IP of `rows`."""
    names = sorted({r.data.hostname for r in rows})
    macs = sorted({m for r in rows for m in [r.data.mac, *[i.mac for i in r.data.interfaces]]})
    ips = sorted({r.data.ip for r in rows if r.data.ip})
    held: dict[tuple[str, str], str] = {}
    conn = session.connection()
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


class _Profiles:
    """The profiles a batch names, and DGXIE's `mac_match` rule (catalog.profiles.profile_for_mac)
    with every profile loaded and every pattern compiled once."""

    COLUMNS = (_P.c.id, _P.c.name, _P.c.role, _P.c.vars)

    def __init__(self, session: Session, rows: Sequence[Row]) -> None:
        wanted = sorted({r.data.profile for r in rows if r.data.profile})
        self.by_name: dict[str, ProfileRef] = {}
        self._conn = session.connection()
        for cond in among(self._conn, _P.c.name, wanted):
            self.by_name.update((r.name, ProfileRef(*r)) for r in self._conn.execute(select(*self.COLUMNS).where(cond)))
        self._matchers: list[tuple[re.Pattern[str], ProfileRef]] | None = None

    def for_mac(self, mac: str) -> ProfileRef | None:
        if self._matchers is None:
            self._matchers = []
            for r in self._conn.execute(select(*self.COLUMNS).order_by(_P.c.id)):
                pattern = (r.vars or {}).get(MAC_MATCH_VAR)
                if isinstance(pattern, str):
                    try:
                        self._matchers.append((re.compile(pattern), ProfileRef(*r)))
                    except re.error:
                        continue
        if not self._matchers:
            return None
        return next((p for rx, p in self._matchers if rx.match(mac.lower())), None)


def problems(session: Session, site: Site, rows: Sequence[Row]) -> list[Problem]:
    """Every reason a row cannot be enrolled, in row order (empty: all can be)."""
    errors: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    held = _taken(session, rows)
    profiles = _Profiles(session, rows)
    for row in rows:
        d = row.data
        keys = [("hostname", d.hostname)] + [("MAC", m) for m in [d.mac, *[i.mac for i in d.interfaces]]]
        keys += [("IP", d.ip)] if d.ip else []
        for kind, value in keys:
            if (kind, value) in seen:
                errors.append(Problem(row, Conflict.status, f"{kind} {value} is also in {seen[kind, value]}"))
            elif (kind, value) in held:
                what = "is already enrolled" if kind == "hostname" else f"belongs to node {held[kind, value]}"
                errors.append(Problem(row, Conflict.status, f"{kind} {value} {what}"))
            seen.setdefault((kind, value), row.where)
        try:
            _check_row(site, profiles, d)
        except DgxieError as exc:
            errors.append(Problem(row, exc.status, exc.detail))
    return errors


def _check_row(site: Site, profiles: _Profiles, d: NodeCreate) -> None:
    check_ip(site, d.ip)
    if d.profile and d.profile not in profiles.by_name:
        raise Invalid(f"unknown profile {d.profile!r}")
    if d.state and State(d.state) not in INITIAL:
        raise Invalid(f"state: a new node is enrolled or discovered, not {d.state}")
    profile = _profile_of(profiles, d)
    site.check_role(d.role or (profile.role if profile else None))


def _profile_of(profiles: _Profiles, d: NodeCreate) -> ProfileRef | None:
    if d.profile:
        return profiles.by_name[d.profile]
    return profiles.for_mac(d.mac) if "profile" not in d.model_fields_set else None


@dataclass(frozen=True)
class Created:
    id: int
    hostname: str
    mac: str
    profile: str | None
    state: str


def create_nodes(session: Session, site: Site, rows: Sequence[Row], *, actor: str,
                 checked: bool = False) -> list[Created]:
    """Enroll every row, or raise `BulkRefused` with every problem and write nothing (`checked`:
    the caller has just had `problems` say there are none, in this transaction).

    Three bulk writes (nodes, interfaces, events: `bulk_write.insert_rows`, COPY on PostgreSQL),
    not the ORM's unit of work: building and flushing ORM objects cost ~1 ms per node."""
    errors = [] if checked else problems(session, site, rows)
    if errors:
        raise BulkRefused(errors)
    profiles = _Profiles(session, rows)
    values: list[dict[str, Any]] = []
    made: list[tuple[str, str, ProfileRef | None, str]] = []
    for row in rows:
        d = row.data
        profile = _profile_of(profiles, d)
        state = d.state or State.ENROLLED.value
        nonce, token_hash = new_boot_nonce(site.box)
        value: dict[str, Any] = {
            "hostname": d.hostname, "ip": d.ip, "profile_id": profile.id if profile else None,
            "role": d.role or (profile.role if profile else None), "state": state, "tags": d.tags, "facts": d.facts,
            "vars": d.vars, "boot_nonce": nonce, "boot_token_hash": token_hash,
            "bmc_url": None, "bmc_username": None, "bmc_password_enc": None}
        if d.bmc is not None:
            shell = Node()  # transient, never added: apply_bmc's checks and sealing, nothing else
            apply_bmc(site, shell, d.bmc)
            value |= {"bmc_url": shell.bmc_url, "bmc_username": shell.bmc_username,
                      "bmc_password_enc": shell.bmc_password_enc}
        values.append(value)
        made.append((d.hostname, d.mac, profile, state))
    try:
        ids = insert_rows(session, Node, values)
        insert_rows(session, Interface, [
            {"node_id": node_id, "mac": mac, "name": name} for node_id, row in zip(ids, rows, strict=True)
            for mac, name in [(row.data.mac, None), *[(i.mac, i.name) for i in row.data.interfaces]]], ids=False)
    except IntegrityError as exc:  # a concurrent writer took a value since the check
        session.rollback()
        raise Conflict(f"conflicts with an existing node ({exc.orig.__class__.__name__})") from None
    session.info[CHANGED] = True  # as events.record does: the script cache drops what it holds
    insert_rows(session, Event, [
        {"actor": actor, "kind": "node.create", "node_id": node_id, "hostname": hostname, "to_state": state,
         "reason": ("enrolled" if state == State.ENROLLED.value else "discovered")
         + (f" (profile {profile.name}: its mac_match matches)" if profile and not row.data.profile else ""),
         "data": {}}
        for node_id, (hostname, _, profile, state), row in zip(ids, made, rows, strict=True)], ids=False)
    return [Created(node_id, hostname, mac, profile.name if profile else None, state)
            for node_id, (hostname, mac, profile, state) in zip(ids, made, strict=True)]


class BulkRefused(DgxieError):
    """Rows that cannot be enrolled; `errors` has one `where: detail` line each. 409 when any row
    collides with a node or another row, else 422."""

    def __init__(self, errors: Iterable[Problem]) -> None:
        found = list(errors)
        self.errors = [p.line for p in found]
        statuses = {p.status for p in found}
        self.status = Conflict.status if Conflict.status in statuses else max(statuses)
        super().__init__(f"nothing enrolled: {len(self.errors)} error(s): " + "; ".join(self.errors))
