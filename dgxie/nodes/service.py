"""Node inventory service: enroll, update, delete, list. Shared by the API and the CLI.

Every mutation records an event with its actor in the same transaction, so a change and its log
entry land together or not at all. Callers own the transaction (`dgxie.db.session_scope`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dgxie.boot.state import INITIAL, State
from dgxie.catalog.profiles import profile_by_name, profile_for_mac
from dgxie.errors import Conflict, Invalid, NotFound
from dgxie.events import record
from dgxie.models import Interface, Node, NodeTag
from dgxie.nodes.bmcs import apply_bmc
from dgxie.nodes.credentials import rotate_boot_token
from dgxie.nodes.macs import canonical_mac
from dgxie.nodes.schemas import MACHINE_FACTS, BmcOut, InterfaceOut, NodeCreate, NodeOut, NodeUpdate
from dgxie.site import Site

MAX_PAGE = 1000


def to_out(node: Node) -> NodeOut:
    """The public JSON shape of a node (never the BMC password)."""
    return NodeOut(
        id=node.id, hostname=node.hostname, mac=node.mac, ip=node.ip,
        profile=node.profile.name if node.profile else None, role=node.role, state=node.state,
        tags=list(node.tags), interfaces=[InterfaceOut(mac=i.mac, name=i.name) for i in node.interfaces],
        bmc=BmcOut(url=node.bmc_url, username=node.bmc_username, password_set=node.bmc_password_enc is not None),
        facts=dict(node.facts), vars=dict(node.vars), state_changed_at=node.state_changed_at,
        created_at=node.created_at, updated_at=node.updated_at,
    )


def mac_of_ref(ref: str) -> str | None:
    """The MAC a node reference spells (any accepted spelling), or None: then it is a hostname."""
    try:
        return canonical_mac(ref)
    except ValueError:
        return None


def check_page(*, limit: int, offset: int, state: str | None) -> None:
    """The refusals of a node page's arguments (`list_nodes`, `reads.page`)."""
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit: must be 1..{MAX_PAGE}")
    if offset < 0:
        raise Invalid("offset: must be >= 0")
    if state is not None and state not in {s.value for s in State}:
        raise Invalid(f"state: unknown state {state!r}")


def get_node(session: Session, ref: str) -> Node:
    """A node by hostname or by any of its MACs (any accepted MAC spelling)."""
    node = session.scalar(select(Node).where(Node.hostname == ref.strip().lower()))
    mac = mac_of_ref(ref) if node is None else None
    if mac is not None:
        node = session.scalar(select(Node).join(Interface).where(Interface.mac == mac))
    if node is None:
        raise NotFound(f"no node {ref!r}")
    return node


def _check_unique(session: Session, *, hostname: str | None, macs: list[str], ip: str | None,
                  self_id: int | None = None) -> None:
    if hostname is not None:
        other = session.scalar(select(Node).where(Node.hostname == hostname))
        if other is not None and other.id != self_id:
            raise Conflict(f"hostname {hostname} is already enrolled")
    seen: set[str] = set()
    for mac in macs:
        if mac in seen:
            raise Invalid(f"MAC {mac} is listed twice")
        seen.add(mac)
        holder = session.scalar(select(Node).join(Interface).where(Interface.mac == mac))
        if holder is not None and holder.id != self_id:
            raise Conflict(f"MAC {mac} belongs to node {holder.hostname}")
    if ip is not None:
        holder = session.scalar(select(Node).where(Node.ip == ip))
        if holder is not None and holder.id != self_id:
            raise Conflict(f"IP {ip} belongs to node {holder.hostname}")


def check_ip(site: Site, ip: str | None) -> None:
    if ip is not None and site.subnets and site.subnet_of(ip) is None:
        nets = ", ".join(str(n) for n in site.subnets)
        raise Invalid(f"ip {ip} is outside every configured subnet ({nets})")


def flush_or_conflict(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent writer won the race for a unique value
        session.rollback()
        raise Conflict(f"conflicts with an existing node ({exc.orig.__class__.__name__})") from None


def create_node(session: Session, site: Site, data: NodeCreate, *, actor: str) -> Node:
    """Enroll one node. Raises Invalid (422) or Conflict (409) and changes nothing on bad input.
    Without a `profile` field (null is an answer: none), the node gets the first profile whose
    `mac_match` matches its MAC, if any (`catalog.profiles.profile_for_mac`, DGXIE's rule)."""
    macs = [data.mac, *[i.mac for i in data.interfaces]]
    _check_unique(session, hostname=data.hostname, macs=macs, ip=data.ip)
    check_ip(site, data.ip)
    profile = profile_by_name(session, data.profile) if data.profile else None
    if profile is None and "profile" not in data.model_fields_set:
        profile = profile_for_mac(session, data.mac)
    role = data.role or (profile.role if profile else None)
    site.check_role(role)
    state = State(data.state) if data.state else State.ENROLLED
    if state not in INITIAL:
        raise Invalid(f"state: a new node is enrolled or discovered, not {data.state}")
    node = Node(hostname=data.hostname, ip=data.ip, profile=profile, role=role, state=state.value,
                tags=data.tags, facts=data.facts, vars=data.vars)
    rotate_boot_token(site.box, node)
    node.interfaces = [Interface(mac=data.mac, name=None)] + [
        Interface(mac=i.mac, name=i.name) for i in data.interfaces
    ]
    if data.bmc is not None:
        apply_bmc(site, node, data.bmc)
    session.add(node)
    flush_or_conflict(session)
    matched = f" (profile {profile.name}: its mac_match matches)" if profile and not data.profile else ""
    record(session, actor=actor, kind="node.create", node=node, to_state=node.state,
           reason=("enrolled" if state is State.ENROLLED else "discovered") + matched)
    return node


def update_node(session: Session, site: Site, node: Node, data: NodeUpdate, *, actor: str) -> Node:
    """Apply a partial update; the event lists the fields that changed (never secret values).

    A BMC URL (scheme, host, port) or user name changed without a new password drops the stored
    password (`dgxie.nodes.bmcs.apply_bmc`) and records `node.bmc.password_dropped`.
    """
    old_facts = dict(node.facts or {})
    fields = data.model_fields_set
    changed: dict[str, Any] = {}
    new_macs: list[str] | None = None
    if "mac" in fields or "interfaces" in fields:
        primary = data.mac if "mac" in fields and data.mac else node.mac
        extra = [i.mac for i in data.interfaces] if data.interfaces is not None else [
            i.mac for i in node.interfaces[1:]]
        if primary is None:
            raise Invalid("mac: a node needs a primary MAC")
        new_macs = [primary, *extra]
    _check_unique(session, hostname=data.hostname if "hostname" in fields else None,
                  macs=new_macs or [], ip=data.ip if "ip" in fields else None, self_id=node.id)
    if "hostname" in fields:
        if data.hostname is None:
            raise Invalid("hostname: cannot be null")
        changed["hostname"] = data.hostname
        node.hostname = data.hostname
    if "ip" in fields:
        check_ip(site, data.ip)
        node.ip = data.ip
        changed["ip"] = data.ip
    if "profile" in fields:
        node.profile = profile_by_name(session, data.profile) if data.profile else None
        changed["profile"] = data.profile
    if "role" in fields:
        site.check_role(data.role)
        node.role = data.role
        changed["role"] = data.role
    for name in ("tags", "facts", "vars"):
        if name in fields:
            value = getattr(data, name)
            setattr(node, name, value if value is not None else ([] if name == "tags" else {}))
            changed[name] = getattr(node, name)
    if "facts" in fields:  # what the BMC scan and the agent read stays; the API sets the rest
        node.facts = {**node.facts, **{k: v for k, v in old_facts.items() if k in MACHINE_FACTS}}
    if new_macs is not None:
        names = {i.mac: i.name for i in node.interfaces}
        if data.interfaces is not None:
            names.update({i.mac: i.name for i in data.interfaces})
        node.interfaces.clear()
        flush_or_conflict(session)
        node.interfaces.extend(Interface(mac=m, name=names.get(m)) for m in new_macs)
        changed["macs"] = new_macs
    dropped: list[str] = []
    if "bmc" in fields and data.bmc is not None:
        dropped = apply_bmc(site, node, data.bmc)
        changed["bmc"] = sorted(data.bmc.model_fields_set)
    flush_or_conflict(session)
    if changed:
        record(session, actor=actor, kind="node.update", node=node, reason="updated " + ", ".join(sorted(changed)),
               data={k: v for k, v in changed.items() if k != "bmc"} | ({"bmc_fields": changed["bmc"]}
                                                                          if "bmc" in changed else {}))
    if dropped:
        record(session, actor=actor, kind="node.bmc.password_dropped", node=node,
               reason=f"BMC {' and '.join(dropped)} changed without a new password: the stored password was "
                      "dropped (set it again for the new BMC)", data={"because": dropped})
    return node


def delete_node(session: Session, node: Node, *, actor: str) -> None:
    record(session, actor=actor, kind="node.delete", node=None, hostname=node.hostname, from_state=node.state,
           reason="deleted", data={"macs": [i.mac for i in node.interfaces], "ip": node.ip})
    session.delete(node)
    flush_or_conflict(session)


def tag_clause(tag: str) -> Any:
    """Nodes that carry `tag`: an index lookup in `node_tags` (kept by triggers, migration 0018)."""
    return Node.id.in_(select(NodeTag.node_id).where(NodeTag.tag == tag))


def list_nodes(session: Session, *, state: str | None = None, role: str | None = None, tag: str | None = None,
               profile: str | None = None, limit: int = 100, offset: int = 0) -> tuple[list[Node], int]:
    """One page of nodes ordered by hostname, and the total that match the filters."""
    check_page(limit=limit, offset=offset, state=state)
    q = select(Node)
    if state is not None:
        q = q.where(Node.state == state)
    if role is not None:
        q = q.where(Node.role == role)
    if tag is not None:
        q = q.where(tag_clause(tag))
    if profile is not None:
        q = q.where(Node.profile_id == profile_by_name(session, profile).id)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    nodes = list(session.scalars(q.order_by(Node.hostname).limit(limit).offset(offset)).unique())
    return nodes, total
