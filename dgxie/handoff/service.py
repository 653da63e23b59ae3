"""Handoff service: node records from the database, and the inventories built from them.

The pure builders (`ansible.py`, `slurm.py`) never see the database; this module reads the nodes,
resolves each role to its Ansible groups through the `Site`, and hands plain records over.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dgxie.errors import Invalid, NotFound
from dgxie.handoff import ansible, slurm
from dgxie.handoff.records import NodeRecord, flat_facts
from dgxie.models import Node
from dgxie.site import Site

# States in which a node has an OS to configure; `--all` lifts this filter.
DEFAULT_STATES = ("installed", "bootstrapping", "ready")

def record_of(site: Site, hostname: str, ip: str | None, role_name: str | None, state: str, tags: Iterable[str] | None,
              facts: dict[str, Any] | None, vars_: dict[str, Any] | None) -> NodeRecord:
    role = site.roles.get(role_name) if role_name else None
    return NodeRecord(hostname=hostname, ip=ip, role=role_name, state=state,
                      groups=tuple(role.groups) if role else (), tags=tuple(tags or ()),
                      facts=flat_facts(facts or {}), vars=dict(vars_ or {}))


def node_records(session: Session, site: Site, *, states: Iterable[str] | None = DEFAULT_STATES) -> list[NodeRecord]:
    """Every node with a role (in `states`, or any state when None), ordered by hostname: the
    columns it needs only, not whole nodes with their profile and interfaces (issue 14)."""
    q = select(Node.hostname, Node.ip, Node.role, Node.state, Node.tags, Node.facts, Node.vars).where(
        Node.role.is_not(None)).order_by(Node.hostname)
    if states is not None:
        q = q.where(Node.state.in_(list(states)))
    return [record_of(site, *row) for row in session.execute(q)]


def _layout(layout: str) -> ansible.Layout:
    if layout not in ansible.LAYOUTS:
        raise Invalid(f"layout: {layout!r} is not one of {', '.join(ansible.LAYOUTS)}")
    return layout


def ansible_list(session: Session, site: Site, *, layout: str = "head", all_states: bool = False) -> dict[str, Any]:
    recs = node_records(session, site, states=None if all_states else DEFAULT_STATES)
    return ansible.inventory_list(recs, _layout(layout))


def ansible_host(session: Session, site: Site, hostname: str) -> dict[str, Any]:
    return ansible.inventory_host(node_records(session, site, states=None), hostname)


def ansible_ini(session: Session, site: Site, *, layout: str = "head", all_states: bool = False) -> str:
    recs = node_records(session, site, states=None if all_states else DEFAULT_STATES)
    return ansible.inventory_ini(recs, _layout(layout))


def slurm_config(session: Session, site: Site, *, by: str = "role", reserve_percent: float = 2.0,
                 all_states: bool = False) -> slurm.SlurmConfig:
    if by not in ("role", "tag"):
        raise Invalid(f"partition-by: {by!r} is not role or tag")
    if not 0 <= reserve_percent < 100:
        raise Invalid("memory reserve: must be 0..99 percent")
    recs = node_records(session, site, states=None if all_states else DEFAULT_STATES)
    return slurm.render(recs, by=by, reserve_percent=reserve_percent)  # type: ignore[arg-type]


def role_of(site: Site, node: Node) -> str:
    """The node's role name, or NotFound when it has none or the config no longer knows it."""
    if not node.role or node.role not in site.roles:
        raise NotFound(f"{node.hostname}: no role to hand off to")
    return node.role
