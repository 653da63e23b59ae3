"""Compliance: each node's latest complete inventory held against its platform's baseline.

Rows: `{"node", "component", "installed", "required", "status"}` (ARCHITECTURE.md; fields may be
added: "platform", "endpoint", "scanned_at", "hint"). A baseline entry absent from the node's
inventory is `missing` with a did-you-mean hint (how a typo'd baseline Id shows up); a node
with no complete scan, or whose model has no baseline, is `unknown`. The `component` filter is a
shell-style glob (`fnmatch`, case-sensitive as Redfish Ids are): `HGX_FW_GPU_SXM_*`, `PSU_[0-2]`;
a name without `*?[` matches itself only.
"""

from __future__ import annotations

import csv
import fnmatch
import html
import io
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dgxie.errors import Invalid
from dgxie.firmware import baseline as bl
from dgxie.firmware.service import STATUSES, _latest_scans, _readings
from dgxie.firmware.versions import status as version_status
from dgxie.models import FirmwareScan, Node
from dgxie.site import Site

FIELDS = ("node", "component", "installed", "required", "status", "platform", "endpoint", "scanned_at", "hint")


def rows(session: Session, site: Site, *, node: str | None = None, component: str | None = None,
         status: str | None = None, baselines: list[bl.Baseline] | None = None) -> list[dict[str, Any]]:
    """Compliance rows, by node then component; `baselines` (default: the site's baseline folder)
    is what the inventories are held against."""
    if status is not None and status not in STATUSES:
        raise Invalid(f"status: must be one of {', '.join(STATUSES)}, not {status!r}")
    if baselines is None:
        baselines = bl.load_site(site.firmware.baselines)
    q = select(Node.id, Node.hostname).order_by(Node.hostname)  # not whole nodes: 10,000 cost 0.8 s
    if node is not None:
        q = q.where(Node.hostname == node)
    nodes = list(session.execute(q))
    latest = _latest_scans(session, [n.id for n in nodes])
    reads = _readings(session, list(latest.values()))
    scans = {s.id: s for s in session.scalars(select(FirmwareScan).where(FirmwareScan.id.in_(list(latest.values())
                                                                                            or [-1])))}
    out: list[dict[str, Any]] = []
    for n in nodes:
        sid = latest.get(n.id)
        if sid is None:
            out.append(_row(n.hostname, None, None, None, "unknown", hint="no complete firmware scan yet"))
            continue
        sc = scans[sid]
        when = sc.finished_at.isoformat()
        base = bl.pick(baselines, sc.model)
        got = {r.component: r for r in reads.get(sid, [])}
        if base is None:
            out.extend(_row(n.hostname, c, r.version, None, "unknown", endpoint=r.endpoint, scanned_at=when,
                            hint=f"no baseline for model {sc.model!r}") for c, r in sorted(got.items()))
            continue
        for cid, r in sorted(got.items()):
            req = base.required(cid)
            if req is not None:
                out.append(_row(n.hostname, cid, r.version, req.version, version_status(r.version, req.version),
                                platform=base.platform, endpoint=r.endpoint, scanned_at=when))
        for name, close in base.unmatched(set(got)):
            req = base.required(name)
            out.append(_row(n.hostname, name, None, req.version if req else None, "missing", platform=base.platform,
                            scanned_at=when, hint=f"did you mean {close}?" if close else "not in the inventory"))
    return [r for r in out if (component is None or (r["component"] is not None
                                                      and fnmatch.fnmatchcase(r["component"], component)))
            and (status is None or r["status"] == status)]


def baseline_problems(session: Session, site: Site, node: Node, baselines: list[bl.Baseline]) -> list[str]:
    """Why `baselines` do not describe `node`'s last complete inventory, one line each (empty: they
    do): no complete scan, no baseline for its model, or entries the inventory lacks (a typo'd
    component Id shows up here, with a did-you-mean)."""
    host = node.hostname
    data = rows(session, site, node=host, baselines=baselines)
    if not data or (len(data) == 1 and data[0]["component"] is None):
        return [f"{host}: no complete firmware scan yet (dgxie firmware scan {host})"]
    nobase = [r for r in data if (r["hint"] or "").startswith("no baseline for model")]
    if nobase and len(nobase) == len(data):
        names = ", ".join(sorted({b.source for b in baselines}))
        return [f"{host}: {nobase[0]['hint']} in {names}"]
    return [f"{host}: {r['component']}: {r['status']}: {r['hint'] or ''}".rstrip(": ")
            for r in data if r["status"] in ("missing", "unknown")]


def _row(node: str, component: str | None, installed: str | None, required: str | None, status: str,
         **extra: Any) -> dict[str, Any]:
    return {"node": node, "component": component, "installed": installed, "required": required, "status": status,
            "platform": extra.get("platform"), "endpoint": extra.get("endpoint"),
            "scanned_at": extra.get("scanned_at"), "hint": extra.get("hint")}


def to_csv(data: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(FIELDS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(data)
    return buf.getvalue()


def summary(data: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for r in data:
        counts[r["status"]] += 1
    return counts


def to_html(data: list[dict[str, Any]], title: str = "dgxie firmware compliance") -> str:
    """A self-contained printable page (inline CSS, no scripts)."""
    counts = summary(data)
    e = html.escape
    cols = (*FIELDS[:5], "hint")
    head = "".join(f"<th>{e(f)}</th>" for f in cols)
    body = "".join(
        f'<tr class="{e(r["status"])}">' + "".join(f"<td>{e(str(r.get(f) or ''))}</td>"
                                                     for f in cols) + "</tr>" for r in data)
    totals = " &middot; ".join(f"{e(k)}: {v}" for k, v in counts.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body{{font:12px/1.4 system-ui,sans-serif;margin:1.5em}} table{{border-collapse:collapse;width:100%}}
th,td{{border:1px solid #bbb;padding:2px 6px;text-align:left}} th{{background:#eee}}
tr.outdated td{{background:#fdd}} tr.missing td{{background:#fec}} tr.ahead td{{background:#def}}
tr.unknown td{{background:#eee}} @media print{{body{{margin:0}} tr{{page-break-inside:avoid}}}}
</style></head><body>
<h1>{e(title)}</h1><p>{totals}</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
</body></html>
"""
