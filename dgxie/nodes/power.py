"""Power and one-time boot through a node's BMC driver; every action is an event.

The driver comes from `bmc_of()` (`dgxie.bmc.drivers.connect()`, whatever the protocol); any failure is a
`BmcError`, turned into `BmcUnavailable` (an `Unavailable`, 503) naming its kind. A failed action is
recorded too
(`<kind>.failed` with `error_kind`): that event is committed before the error is raised, since
the caller's transaction would otherwise roll the audit record back with it. Results are the
typed shapes of `dgxie.nodes.schemas` (the API's response models, the CLI's `--json`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

from sqlalchemy.orm import Session

from dgxie.bmc.base import BOOT_DEVICES, POWER_ACTIONS, Bmc, BmcError, BootDevice, Endpoint, PowerAction
from dgxie.bmc.drivers import connect
from dgxie.errors import Conflict, Invalid, Unavailable
from dgxie.events import record
from dgxie.models import Node
from dgxie.nodes.schemas import BootOut, PowerOut, PowerStatusOut, PxeCycleOut
from dgxie.site import Site


def endpoint_of(site: Site, node: Node) -> Endpoint:
    """The node's primary BMC endpoint, password decrypted (never logged or returned)."""
    if not node.bmc_url:
        raise Conflict(f"{node.hostname} has no BMC (set one with dgxie node set --bmc URL)")
    password = site.box.open(node.bmc_password_enc) if node.bmc_password_enc else None
    return Endpoint(url=node.bmc_url, username=node.bmc_username, password=password, name="bmc")


def bmc_of(site: Site, node: Node) -> Bmc:
    """The driver of the node's primary BMC (`Conflict` if it has none; `BmcUnsupported` for a URL
    no driver serves)."""
    return connect(endpoint_of(site, node), site.bmc_options)


class BmcUnavailable(Unavailable):
    """A BMC action failed (503): `kind` is the `BmcError` kind, `step` the step of a multi-step
    action that failed (None for a single one)."""

    def __init__(self, node: Node, exc: BmcError, step: str | None = None) -> None:
        what = f"{step} failed: " if step else ""
        super().__init__(f"{node.hostname}: {what}BMC {exc.kind}: {exc.message}")
        self.kind, self.step = exc.kind, step


@contextlib.contextmanager
def _audited(session: Session, site: Site, node: Node, actor: str, kind: str, data: dict[str, Any]) -> Iterator[Bmc]:
    """The node's driver for one audited action: a `BmcError` inside is recorded as `<kind>.failed`
    (committed) and raised as `BmcUnavailable`. `data["step"]`, when the caller keeps it current,
    names the step that failed."""
    try:
        with bmc_of(site, node) as b:
            yield b
    except BmcError as exc:
        step = data.get("step")
        record(session, actor=actor, kind=f"{kind}.failed", node=node,
               reason=f"{step + ': ' if step else ''}BMC {exc.kind}: {exc.message}",
               data=data | {"error_kind": exc.kind})
        session.commit()
        raise BmcUnavailable(node, exc, step) from None


def power_status(site: Site, node: Node) -> PowerStatusOut:
    try:
        with bmc_of(site, node) as b:
            return PowerStatusOut(node=node.hostname, power=b.power_state())
    except BmcError as exc:
        raise BmcUnavailable(node, exc) from None


def power(session: Session, site: Site, node: Node, action: str, *, actor: str) -> PowerOut:
    """Power `on`, `off` or `cycle` a node; returns the state read back right after."""
    if action not in POWER_ACTIONS:
        raise Invalid(f"action: must be one of {', '.join(POWER_ACTIONS)}, not {action!r}")
    act = cast(PowerAction, action)
    with _audited(session, site, node, actor, "node.power", {"action": action}) as b:
        state = b.power(act)
    record(session, actor=actor, kind="node.power", node=node, reason=f"power {action}",
           data={"action": action, "power": state, "protocol": b.protocol})
    return PowerOut(node=node.hostname, action=act, power=state)


def pxe_once_and_cycle(session: Session, site: Site, node: Node, actor: str) -> PxeCycleOut:
    """Set PXE for the next boot only, then power-cycle (on if off): what reprovision needs.
    Raises `BmcUnavailable` naming the step that failed (`PXE once` or `power cycle`)."""
    data: dict[str, Any] = {"boot": "pxe", "step": "PXE once"}
    with _audited(session, site, node, actor, "node.pxe_cycle", data) as b:
        b.boot_once("pxe")
        data["step"] = "power cycle"
        state = b.power("cycle")
    record(session, actor=actor, kind="node.pxe_cycle", node=node, reason="PXE once + power cycle",
           data={"boot": "pxe", "power": state, "protocol": b.protocol})
    return PxeCycleOut(node=node.hostname, boot="pxe", power=state)


def boot_once(session: Session, site: Site, node: Node, device: str, *, actor: str) -> BootOut:
    """Boot from `device` (pxe | disk) on the next boot only."""
    if device not in BOOT_DEVICES:
        raise Invalid(f"device: must be one of {', '.join(BOOT_DEVICES)}, not {device!r}")
    dev = cast(BootDevice, device)
    with _audited(session, site, node, actor, "node.bootdev", {"boot": device}) as b:
        b.boot_once(dev)
    record(session, actor=actor, kind="node.bootdev", node=node, reason=f"next boot: {device}",
           data={"boot": device, "protocol": b.protocol})
    return BootOut(node=node.hostname, boot=dev)


def reprovision_hook(session: Session, site: Site, node: Node, actor: str) -> PxeCycleOut | None:
    """The reprovision (and erase) after-hook: PXE once + cycle when the node has a BMC (None when
    it has none). A BMC failure is recorded (`node.pxe_cycle.failed`) and returned (`ok` false,
    the step and the error) for the caller to report; it does not undo the committed reprovision."""
    if not node.bmc_url:
        return None
    try:
        return pxe_once_and_cycle(session, site, node, actor)
    except BmcUnavailable as exc:
        return PxeCycleOut(node=node.hostname, ok=False, boot="pxe" if exc.step == "power cycle" else None,
                           power=None, error=exc.detail, error_kind=exc.kind)
