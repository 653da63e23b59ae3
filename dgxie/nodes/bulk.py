"""Enroll many nodes in one transaction (issue 14: 5,000 nodes/s for `POST /api/v1/nodes/bulk` and
`dgxie node import`; one `create_node` per row ran four lookups, scanned every profile for a
`mac_match` and flushed once per node: ~190 nodes/s).

The rules are `service.create_node`'s, checked for the whole batch with a handful of queries:
hostnames, MACs and IPs unique in the batch and against the inventory (`bulk_checks`: one
statement on PostgreSQL, one `IN` query per 500 values elsewhere), IPs inside the configured
subnets, known profiles and roles, enrolled or discovered only. Every problem of every row is
collected first and nothing is written unless there are none; then the nodes, their interfaces
and one `node.create` event each are inserted in bulk (the audit log keeps a line per node, as for
a single enroll).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dgxie.boot.state import INITIAL, State
from dgxie.db import CHANGED
from dgxie.errors import Conflict, DgxieError, Invalid
from dgxie.models import Event, Interface, Node
from dgxie.nodes.bmcs import apply_bmc
from dgxie.nodes.bulk_checks import ProfileRef, Profiles, taken
from dgxie.nodes.bulk_write import insert_rows
from dgxie.nodes.credentials import new_boot_nonce
from dgxie.nodes.schemas import NodeCreate
from dgxie.nodes.service import check_ip
from dgxie.site import Site


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


def profiles(session: Session, rows: Sequence[Row]) -> Profiles:
    """The profiles `rows` name or match, for one transaction's `problems` and `create_nodes`."""
    return Profiles(session.connection(), [r.data for r in rows])


def problems(session: Session, site: Site, rows: Sequence[Row], found: Profiles | None = None) -> list[Problem]:
    """Every reason a row cannot be enrolled, in row order (empty: all can be); `found`: this
    transaction's `profiles(rows)` (read here when not given)."""
    errors: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    held = taken(session.connection(), [r.data for r in rows])
    found = profiles(session, rows) if found is None else found
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
            _check_row(site, found, d)
        except DgxieError as exc:
            errors.append(Problem(row, exc.status, exc.detail))
    return errors


def _check_row(site: Site, found: Profiles, d: NodeCreate) -> None:
    check_ip(site, d.ip)
    if d.profile and d.profile not in found.by_name:
        raise Invalid(f"unknown profile {d.profile!r}")
    if d.state and State(d.state) not in INITIAL:
        raise Invalid(f"state: a new node is enrolled or discovered, not {d.state}")
    profile = _profile_of(found, d)
    site.check_role(d.role or (profile.role if profile else None))


def _profile_of(found: Profiles, d: NodeCreate) -> ProfileRef | None:
    if d.profile:
        return found.by_name[d.profile]
    return found.for_mac(d.mac) if "profile" not in d.model_fields_set else None


@dataclass(frozen=True)
class Created:
    id: int
    hostname: str
    mac: str
    profile: str | None
    state: str


def create_nodes(session: Session, site: Site, rows: Sequence[Row], *, actor: str,
                 checked: bool = False, found: Profiles | None = None) -> list[Created]:
    """Enroll every row, or raise `BulkRefused` with every problem and write nothing (`checked`:
    the caller has just had `problems` say there are none, in this transaction; `found`: this
    transaction's `profiles(rows)`, read here when not given).

    Three bulk writes (nodes, interfaces, events: `bulk_write.insert_rows`, COPY on PostgreSQL),
    not the ORM's unit of work: building and flushing ORM objects cost ~1 ms per node."""
    found = profiles(session, rows) if found is None else found
    errors = [] if checked else problems(session, site, rows, found)
    if errors:
        raise BulkRefused(errors)
    values: list[dict[str, Any]] = []
    made: list[tuple[str, str, ProfileRef | None, str]] = []
    for row in rows:
        d = row.data
        profile = _profile_of(found, d)
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
