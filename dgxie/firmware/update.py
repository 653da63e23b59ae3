"""Rolling firmware updates through the BMC driver: batches of N nodes, stop on the first failure.

Each node: `Bmc.update_firmware` with the staged package's URL (Redfish: SimpleUpdate with
ImageURI) or `Bmc.push_firmware` with the file (Redfish: a MultipartHttpPushUri upload), both
waiting for the update's end (the Redfish Task's final state); then the batch is rescanned so
compliance reflects what the BMC now reports. A driver that cannot update (IPMI) fails its node
with `BMC unsupported`. Every node's outcome is an event; nodes after a failed batch are reported
`skipped` and not touched. A `ready` node is drained from its scheduler first (its role's drain
hook; a failing drain stops the rollout) and resumed after a successful update.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.orm import Session

from dgxie.bmc.base import BmcError
from dgxie.errors import Conflict, Invalid
from dgxie.events import record
from dgxie.firmware import service
from dgxie.firmware.packages import Package
from dgxie.handoff import hooks
from dgxie.models import Node
from dgxie.nodes.power import bmc_of
from dgxie.site import Site


@dataclass
class UpdateResult:
    node: str
    state: str  # Completed | Exception | Killed | Timeout | error | skipped
    detail: str = ""
    task: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "Completed"


def _one(site: Site, node: Node, pkg: Package, targets: list[str] | None, multipart: bool, timeout: float,
         poll: float) -> UpdateResult:
    try:
        with bmc_of(site, node) as bmc:
            if multipart:
                res = bmc.push_firmware(pkg.path.read_bytes(), pkg.name, targets, timeout=timeout, poll=poll)
            else:
                res = bmc.update_firmware(pkg.url(site), targets, timeout=timeout, poll=poll)
    except BmcError as exc:
        return UpdateResult(node.hostname, "error", f"BMC {exc.kind}: {exc.message}")
    return UpdateResult(node.hostname, res.state, "; ".join(m for m in res.messages if m), res.uri)


def rolling_update(session: Session, site: Site, nodes: list[Node], pkg: Package, *, actor: str,
                   targets: list[str] | None = None, batch: int = 1, multipart: bool = False,
                   timeout: float = 3600, poll: float = 5.0) -> list[UpdateResult]:
    if batch < 1:
        raise Invalid("batch: at least 1")
    out: list[UpdateResult] = []
    for start in range(0, len(nodes), batch):
        group = nodes[start:start + batch]
        try:  # a ready node leaves its scheduler first (the role's drain hook); a failed drain stops here
            drained = [n for n in group if hooks.drain(session, site, n, actor).ran]
        except Conflict as exc:
            out.append(UpdateResult("-", "error", f"drain refused: {exc.detail}"))
            out.extend(UpdateResult(n.hostname, "skipped", "a drain hook failed") for n in nodes[start:])
            break
        with ThreadPoolExecutor(len(group)) as pool:
            results = list(pool.map(lambda n: _one(site, n, pkg, targets, multipart, timeout, poll), group))
        for n, r in zip(group, results, strict=True):
            if r.ok and n in drained:
                hooks.resume(session, site, n, actor)  # a failed update leaves the node drained
        for n, r in zip(group, results, strict=True):
            record(session, actor=actor, kind="firmware.update" if r.ok else "firmware.update.failed", node=n,
                   reason=f"{pkg.name}: {r.state}{': ' + r.detail if r.detail else ''}"[:500],
                   data={"package": pkg.name, "sha256": pkg.sha256, "targets": targets or [], "task": r.task,
                         "state": r.state, "method": "multipart" if multipart else "simple"})
        service.scan(session, site, group, actor=actor)
        out.extend(results)
        if not all(r.ok for r in results):
            out.extend(UpdateResult(n.hostname, "skipped", "an earlier batch failed") for n in nodes[start + batch:])
            break
    return out
