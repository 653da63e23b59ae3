"""Firmware scan and history. Shared by the API and the CLI.

`scan_targets()` picks the nodes (named ones, and with `all_` every node with a BMC); `scan()`
reads every endpoint of those nodes concurrently, each through its BMC driver (`dgxie.bmc.scan`),
then stores one `FirmwareScan` per node: `complete` with a reading per component, or `failed` with
the error and no readings (a node with one failed endpoint is failed as a whole: no partial
inventories). Results are `ScanResult`s, in the order of the nodes given.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dgxie.bmc import scan as bmc_scan
from dgxie.bmc.base import BmcError, Endpoint, Inventory
from dgxie.errors import Invalid
from dgxie.events import record
from dgxie.firmware.schemas import ScanResult
from dgxie.models import BmcEndpoint, FirmwareReading, FirmwareScan, Node
from dgxie.nodes.bmcs import origin
from dgxie.nodes.power import endpoint_of
from dgxie.nodes.service import get_node
from dgxie.site import Site

STATUSES = ("compliant", "outdated", "ahead", "missing", "unknown")


def scan_targets(session: Session, names: Sequence[str], *, all_: bool = False) -> list[Node]:
    """The nodes named (hostnames or MACs, in that order, with a BMC or not), then with `all_`
    every other node that has a BMC, by hostname."""
    targets = [get_node(session, n) for n in names]
    if all_:
        seen = {n.id for n in targets}
        q = select(Node).where(Node.bmc_url.is_not(None), Node.bmc_url != "").order_by(Node.hostname)
        targets.extend(n for n in session.scalars(q).unique() if n.id not in seen)
    return targets


def endpoints(site: Site, node: Node, extra: list[BmcEndpoint]) -> list[Endpoint]:
    """The node's BMC plus its extra endpoints. An endpoint without credentials of its own inherits
    the node's only when it is on the same host as the node's BMC (any port): the node's password
    is never sent to another host."""
    main = endpoint_of(site, node)
    out = [main]
    for e in extra:
        same_host = (origin(e.url) or ("", "", 0))[1] == (origin(main.url) or ("", "", 0))[1]
        inherited = main.password if e.username is None and same_host else None
        pw = site.box.open(e.password_enc) if e.password_enc else inherited
        out.append(Endpoint(url=e.url, username=e.username if e.username is not None else main.username,
                            password=pw, name=e.name))
    return out


def scan(session: Session, site: Site, nodes: list[Node], *, actor: str,
         progress: Callable[[str, bool], None] | None = None) -> list[ScanResult]:
    """Scan `nodes` (those without a BMC are reported, not scanned) and store the results."""
    extra: dict[int, list[BmcEndpoint]] = {}
    for e in session.scalars(select(BmcEndpoint).where(BmcEndpoint.node_id.in_([n.id for n in nodes]))):
        extra.setdefault(e.node_id, []).append(e)
    plan: list[tuple[Node, Endpoint]] = []
    results: dict[int, ScanResult] = {}
    for n in nodes:
        if not n.bmc_url:
            results[n.id] = ScanResult(node=n.hostname, ok=False, error_kind="no-bmc", error="no BMC configured")
            continue
        plan.extend((n, ep) for ep in endpoints(site, n, extra.get(n.id, [])))
    started = datetime.now(UTC)
    by_node: dict[int, list[Inventory | BmcError]] = {}
    per_node = Counter(n.id for n, _ in plan)

    def done(i: int, res: Inventory | BmcError) -> None:
        node = plan[i][0]
        by_node.setdefault(node.id, []).append(res)
        if progress is not None and len(by_node[node.id]) == per_node[node.id]:
            progress(node.hostname, all(isinstance(r, Inventory) for r in by_node[node.id]))

    raw = bmc_scan.scan([ep for _, ep in plan], site.bmc_options, concurrency=site.bmc.scan_concurrency, on_done=done)
    grouped: dict[int, list[tuple[Endpoint, Inventory | BmcError]]] = {}
    for (n, ep), res in zip(plan, raw, strict=True):
        grouped.setdefault(n.id, []).append((ep, res))
    for n in nodes:
        if n.id in grouped:
            results[n.id] = _store(session, n, grouped[n.id], started, actor)
    return [results[n.id] for n in nodes]


def _store(session: Session, node: Node, res: list[tuple[Endpoint, Inventory | BmcError]], started: datetime,
           actor: str) -> ScanResult:
    now = datetime.now(UTC)
    errors = [(ep, r) for ep, r in res if isinstance(r, BmcError)]
    invs = [r for _, r in res if isinstance(r, Inventory)]
    notes = [f"{i.endpoint}: {note}" for i in invs for note in i.notes]
    reqs = sum(i.requests for i in invs)
    model = invs[0].model if invs and res[0][1] is invs[0] else None
    if errors:
        kind = errors[0][1].kind
        msg = "; ".join(f"{ep.name}: {e.message}" for ep, e in errors)
        session.add(FirmwareScan(node_id=node.id, hostname=node.hostname, started_at=started, finished_at=now,
                                 status="failed", error_kind=kind, error=msg, model=model, requests=reqs,
                                 notes=notes, managers={}))
        record(session, actor=actor, kind="firmware.scan.failed", node=node, reason=f"BMC {kind}: {msg}"[:500],
               data={"error_kind": kind})
        return ScanResult(node=node.hostname, ok=False, model=model, error_kind=kind, error=msg, notes=notes,
                          requests=reqs)
    sc = FirmwareScan(node_id=node.id, hostname=node.hostname, started_at=started, finished_at=now,
                      status="complete", model=model, requests=reqs, notes=notes,
                      managers={i.endpoint: i.managers for i in invs})
    session.add(sc)
    session.flush()
    comps = [c for i in invs for c in i.components]
    session.add_all(FirmwareReading(scan_id=sc.id, node_id=node.id, endpoint=c.endpoint, component=c.id,
                                    version=c.version, read_at=now) for c in comps)
    if invs and invs[0].facts:
        node.facts = {**(node.facts or {}), "hardware": invs[0].facts}
    record(session, actor=actor, kind="firmware.scan", node=node, reason=f"{len(comps)} components",
           data={"scan_id": sc.id, "model": model, "components": len(comps)})
    return ScanResult(node=node.hostname, ok=True, components=len(comps), model=model, notes=notes, requests=reqs)


# -- reading history -------------------------------------------------------------------------

def _latest_scans(session: Session, node_ids: list[int] | None, before: datetime | None = None) -> dict[int, int]:
    q = select(FirmwareScan.node_id, func.max(FirmwareScan.id)).where(FirmwareScan.status == "complete",
                                                                      FirmwareScan.node_id.is_not(None))
    if node_ids is not None:
        q = q.where(FirmwareScan.node_id.in_(node_ids))
    if before is not None:
        q = q.where(FirmwareScan.finished_at <= before)
    return {nid: sid for nid, sid in session.execute(q.group_by(FirmwareScan.node_id)) if nid is not None}


def _readings(session: Session, scan_ids: list[int]) -> dict[int, list[FirmwareReading]]:
    out: dict[int, list[FirmwareReading]] = {}
    for r in session.scalars(select(FirmwareReading).where(FirmwareReading.scan_id.in_(scan_ids))):
        out.setdefault(r.scan_id, []).append(r)
    return out


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`7d`, `12h`, `30m`, or an ISO 8601 time -> an aware UTC datetime."""
    now = now or datetime.now(UTC)
    m = re.fullmatch(r"\s*(\d{1,12})\s*([dhmw])\s*", text)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        try:
            return now - timedelta(**{{"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}[unit]: n})
        except OverflowError:
            raise Invalid(f"since: {text.strip()} reaches before the year 1") from None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"since: {text!r} is neither a duration like 7d/12h/30m nor an ISO 8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def changes(session: Session, since: datetime, nodes: list[Node] | None = None) -> list[dict[str, Any]]:
    """Components whose version differs between the last complete scan at `since` (or the first
    after it) and the latest one: `{"node", "component", "before", "after", "changed"}`."""
    ids = [n.id for n in nodes] if nodes is not None else None
    now_scans = _latest_scans(session, ids)
    then_scans = _latest_scans(session, ids, before=since)
    q = select(FirmwareScan.node_id, func.min(FirmwareScan.id)).where(
        FirmwareScan.status == "complete", FirmwareScan.finished_at > since).group_by(FirmwareScan.node_id)
    first_after = {nid: sid for nid, sid in session.execute(q) if nid is not None}
    pairs = {nid: (then_scans.get(nid) or first_after.get(nid), sid) for nid, sid in now_scans.items()}
    reads = _readings(session, [s for p in pairs.values() for s in p if s is not None])
    scans = {s.id: s for s in session.scalars(select(FirmwareScan).where(FirmwareScan.id.in_(list(reads) or [-1])))}
    rows: list[dict[str, Any]] = []
    for _nid, (old, new) in pairs.items():
        if old is None or old == new:
            continue
        before = {r.component: r.version for r in reads.get(old, [])}
        after = {r.component: r.version for r in reads.get(new, [])}
        for cid in sorted(set(before) | set(after)):
            if before.get(cid) != after.get(cid):
                rows.append({"node": scans[new].hostname, "component": cid, "before": before.get(cid),
                             "after": after.get(cid), "changed": "added" if cid not in before else
                             "removed" if cid not in after else "version",
                             "scanned_at": scans[new].finished_at.isoformat()})
    return sorted(rows, key=lambda r: (r["node"], r["component"]))
