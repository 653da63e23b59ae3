"""The deploy agent's side of dgxie: hello, facts, plan, progress, done (docs/deploy.md).

Trust: the agent proves who it is in two steps. Its hello names the MAC it booted from and must
come from the address dgxie leased or reserved for that MAC (`nodes.origin`; knowing a MAC is not
enough); the answer carries the node's one-time credential for the `agent` purpose
(`nodes.credentials`: stored as its sha256, replaced at every hello, dropped at every state change).
Every later call carries it. State changes all go through `nodes.lifecycle.transition`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dgxie.agent import disks, facts
from dgxie.agent.facts import Facts
from dgxie.agent.plan import DeployPlan, erase_text, mode_for, shell_vars
from dgxie.boot import urls
from dgxie.boot.decide import deploys_image
from dgxie.boot.state import State
from dgxie.errors import Conflict, Forbidden, Invalid, Unauthorized
from dgxie.events import record
from dgxie.handoff.bootstrap import on_installed
from dgxie.install import seed
from dgxie.models import Interface, Node
from dgxie.models.types import utcnow
from dgxie.nodes import credentials, origin
from dgxie.nodes.lifecycle import transition
from dgxie.nodes.macs import canonical_mac
from dgxie.nodes.schemas import NodeCreate
from dgxie.nodes.service import create_node
from dgxie.site import Site

AGENT = "agent"
MAX_LOG = 4000


def mint_token(node: Node) -> str:
    """A new agent credential for `node`; the previous one stops working."""
    return credentials.mint(node, "agent")


def is_image_deploy(node: Node) -> bool:
    return node.profile is not None and deploys_image(node.profile.template)


def hello(session: Session, site: Site, mac: str, peer: str, *, first: bool) -> str:
    """The agent's first call: who it is, what to do, and its token (shell text)."""
    try:
        mac = canonical_mac(mac)
    except ValueError:
        raise Invalid(f"mac: {mac!r} is not a MAC address") from None
    node = session.scalar(select(Node).join(Interface).where(Interface.mac == mac).with_for_update(of=Node))
    if not origin.speaks_for(session, node, peer, site.boot.trusted_networks, macs=[mac]):
        raise Forbidden(f"{peer} is not the address dgxie gave {mac}")
    if node is None:
        if not site.discovery:
            raise Forbidden(f"{mac} is not enrolled and discovery is off")
        node = create_node(session, site, NodeCreate(hostname=f"node-{mac.replace(':', '')}", mac=mac,
                                                     state="discovered"), actor=AGENT)
    commissioned = bool((node.facts or {}).get("commissioning"))
    mode = mode_for(node.state, image_deploy=is_image_deploy(node), first_hello=first, commissioned=commissioned)
    token = mint_token(node)
    if first:
        record(session, actor=AGENT, kind="agent.hello", node=node, reason=f"agent up on {peer}: {mode.value}",
               data={"mac": mac, "ip": peer, "mode": mode.value})
    return shell_vars({"DGXIE_NODE": node.hostname, "DGXIE_MODE": mode.value, "DGXIE_TOKEN": token})


def node_by_token(session: Session, token: str) -> Node:
    """The node holding this agent token; 401 (one message) for a wrong, dropped or expired one."""
    try:
        return credentials.node_by_credential(session, "agent", token)
    except Unauthorized:
        raise Unauthorized("agent token not valid") from None


def receive_facts(session: Session, node: Node, data: bytes, *, max_bytes: int) -> dict[str, object]:
    """Parse the raw facts bundle into `facts["commissioning"]`; returns the summary stored."""
    parsed = facts.parse_bundle(facts.read_tar(data, max_bytes=max_bytes))
    stored = facts.commissioning_facts(parsed)
    node.facts = {**(node.facts or {}), "commissioning": stored}
    summary = facts.summary(parsed)
    record(session, actor=AGENT, kind="agent.facts", node=node,
           reason="hardware facts: " + ", ".join(f"{k}={v}" for k, v in summary.items() if v not in (None, "")),
           data={"disks": len(parsed.disks), "nics": len(parsed.nics)})
    return summary


def plan(session: Session, site: Site, node: Node) -> str:
    """The deploy or erase plan (shell text) with a fresh token; a deploy moves the node to installing.

    A plan that cannot be made for this machine (no disk matches the profile's rule) fails the
    node with the reason and raises `PlanRefused`; the caller commits that, then answers 409."""
    stored = (node.facts or {}).get("commissioning") or {}
    found = list(Facts.model_validate(stored.get("detail") or {}).disks)
    if node.state == State.ERASING:
        return erase_text(mint_token(node), [d.path for d in found])
    if node.state not in (State.ENROLLED, State.INSTALLING) or not is_image_deploy(node):
        raise Conflict(f"{node.hostname}: nothing to deploy in state {node.state}")
    prof = node.profile
    assert prof is not None
    image = prof.image
    rootfs = (image.files or {}).get("rootfs") if image is not None else None
    try:  # anything that stops the plan fails the node with the reason (never a silent stall)
        if image is None or not isinstance(rootfs, dict):
            raise Invalid(f"profile {prof.name}: image {image.name if image else None!r} has no root file system "
                          "(build one with dgxie image build)")
        values = seed.node_vars(site, node).values  # the same layered variables the node's seed sees
        rule = disks.parse_rule(values)
        chosen = disks.choose(found, rule)
    except Invalid as exc:
        reason = f"deploy failed at plan: {exc.detail}"
        if node.state == State.ENROLLED:
            transition(session, node, State.INSTALLING, actor=AGENT, kind="install.start",
                       reason="agent asked for its plan")
        transition(session, node, State.FAILED, actor=AGENT, kind="install.failed", reason=reason[:500],
                   data={"step": "plan"})
        raise PlanRefused(reason) from None
    assert image is not None and isinstance(rootfs, dict)
    if node.state == State.ENROLLED:
        transition(session, node, State.INSTALLING, actor=AGENT, kind="install.start",
                   reason=f"agent deploys {image.name} to {' '.join(d.path for d in chosen)}")
    node.install_seen_at = utcnow()
    cmdline = str(values.get("kernel_cmdline", "console=tty0 console=ttyS0,115200"))
    return DeployPlan(
        hostname=node.hostname, layout=rule.layout,
        disks=tuple(d.path for d in chosen), serials=tuple(d.serial or "" for d in chosen),
        sizes=tuple(d.size for d in chosen),
        image_url=urls.image_file_url(site.public_url, image.name, str(rootfs["file"])),
        image_sha256=str(rootfs["sha256"]), image_size=int(rootfs["size"]), image_format=str(rootfs["format"]),
        seed_url=urls.node_base_url(site.public_url, credentials.boot_token(site.box, node)), cmdline=cmdline,
        token=mint_token(node),
    ).text()


class PlanRefused(Exception):
    """The plan cannot be made; the node is already `failed` with this reason (commit, then 409)."""


def progress(session: Session, node: Node, step: str, message: str) -> None:
    """One progress event (the agent's own steps: partition, image, bootloader, ...)."""
    if node.state == State.INSTALLING:
        node.install_seen_at = utcnow()
    record(session, actor=AGENT, kind="agent.progress", node=node, reason=f"{step}: {message}"[:500],
           data={"step": step[:64]})


def done(session: Session, site: Site, node: Node, *, status: str, step: str, log: str) -> str:
    """The agent's last word for this job: installed / discovered on ok, failed otherwise."""
    if status not in ("ok", "failed"):
        raise Invalid("status must be ok or failed")
    tail = log[-MAX_LOG:]
    if status == "failed" and node.state == State.FAILED:
        return "failed"  # dgxie failed it first (a refused plan) or a retried report
    if node.state == State.INSTALLING:
        if status == "ok":
            transition(session, node, State.INSTALLED, actor=AGENT, kind="install.finished",
                       reason="agent wrote the image and the bootloader")
            return on_installed(session, site, node, actor=AGENT) or "installed"
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
        transition(session, node, State.FAILED, actor=AGENT, kind="install.failed",
                   reason=f"deploy failed at {step or 'unknown step'}: {last}"[:500],
                   data={"step": step[:64], "log": tail})
        return "failed"
    if node.state == State.ERASING:
        if status == "ok":
            transition(session, node, State.DISCOVERED, actor=AGENT, kind="erase.finished",
                       reason="agent wiped every disk")
            return "discovered"
        transition(session, node, State.FAILED, actor=AGENT, kind="erase.failed",
                   reason=f"erase failed at {step or 'unknown step'}", data={"step": step[:64], "log": tail})
        return "failed"
    raise Conflict(f"{node.hostname}: the agent has no job in state {node.state}")
