"""The fleet view's queries (the dashboard): search, filters, sort and one page of nodes, and the
counts by state and by role. Paged in the database, so a page costs the same with 10,000 nodes.

Search `q` matches, case-insensitively, a substring of the hostname, the IP, a MAC of any
interface, a tag or the facts document as text (serial numbers, models, rack...). Filters are
exact: state, role, profile, tag, and a set of hostnames (the dashboard's firmware filter, which
it computes from the compliance rows: this package sits below `firmware`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from dgxie.boot.state import State
from dgxie.errors import Invalid
from dgxie.models import Interface, Node, Profile
from dgxie.nodes.service import tag_clause

SORTS: dict[str, Any] = {"hostname": Node.hostname, "ip": Node.ip, "state": Node.state, "role": Node.role,
                         "profile": Profile.name, "changed": Node.state_changed_at}
MAX_PAGE_SIZE = 200
MAX_QUERY = 200
MAX_HOSTNAMES = 30_000  # under SQLite's 32,766 bound parameters


@dataclass(frozen=True)
class FleetQuery:
    """What the fleet page asks for; `check()` refuses what the database must not be asked."""
    q: str = ""
    state: str = ""
    role: str = ""
    profile: str = ""
    tag: str = ""
    sort: str = "hostname"
    desc: bool = False
    page: int = 1
    size: int = 50
    hostnames: frozenset[str] | None = None  # only these (the page's firmware filter), None: all

    def check(self) -> None:
        if self.state and self.state not in {s.value for s in State}:
            raise Invalid(f"state: unknown state {self.state!r}")
        if self.sort not in SORTS:
            raise Invalid(f"sort: one of {', '.join(SORTS)}")
        if not 1 <= self.size <= MAX_PAGE_SIZE:
            raise Invalid(f"size: must be 1..{MAX_PAGE_SIZE}")
        if not 1 <= self.page <= 1_000_000:
            raise Invalid("page: must be 1..1000000")
        if len(self.q) > MAX_QUERY or any(len(v) > 128 for v in (self.role, self.profile, self.tag)):
            raise Invalid("a search or filter value is too long")


@dataclass
class FleetPage:
    nodes: list[Node]
    total: int
    by_state: dict[str, int] = field(default_factory=dict)
    by_role: dict[str, int] = field(default_factory=dict)


def _search(q: str) -> Any:
    like = f"%{q.lower()}%"
    mac = exists().where(Interface.node_id == Node.id, func.lower(Interface.mac).like(like))
    return or_(Node.hostname.like(like), Node.ip.like(like), mac,
               func.lower(cast(Node.tags, String)).like(like), func.lower(cast(Node.facts, String)).like(like))


def fleet_page(session: Session, fq: FleetQuery) -> FleetPage:
    """One page of matching nodes, their total, and the whole fleet's counts by state and role."""
    fq.check()
    q = select(Node).outerjoin(Profile, Node.profile_id == Profile.id)
    if fq.q.strip():
        q = q.where(_search(fq.q.strip()))
    if fq.state:
        q = q.where(Node.state == fq.state)
    if fq.role:
        q = q.where(Node.role == fq.role)
    if fq.profile:
        q = q.where(Profile.name == fq.profile)
    if fq.tag:
        q = q.where(tag_clause(fq.tag))
    if fq.hostnames is not None:
        q = q.where(Node.hostname.in_(sorted(fq.hostnames)[:MAX_HOSTNAMES]))
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    col = SORTS[fq.sort]
    order = [col.desc() if fq.desc else col.asc(), Node.hostname]
    nodes = list(session.scalars(q.order_by(*order).limit(fq.size).offset((fq.page - 1) * fq.size)).unique())
    by_state = {k: n for k, n in session.execute(select(Node.state, func.count()).group_by(Node.state))}
    by_role = {(k or "-"): n for k, n in session.execute(select(Node.role, func.count()).group_by(Node.role))}
    return FleetPage(nodes, total, dict(sorted(by_state.items())), dict(sorted(by_role.items())))


def choices(session: Session) -> dict[str, list[str]]:
    """The values the filters offer: states, roles and profiles in use."""
    roles = sorted(r for r in session.scalars(select(Node.role).distinct()) if r)
    profiles = sorted(session.scalars(select(Profile.name)))
    return {"state": [s.value for s in State], "role": roles, "profile": profiles}
