"""The firmware gauges are not recomputed per scrape (dgxie/firmware/metrics.py): the same inputs
reuse the last rows; changed inputs recompute once `SHARE` x the last cost has passed."""

from __future__ import annotations

import time

from dgxie.context import Context
from dgxie.firmware import metrics
from dgxie.nodes import service
from dgxie.nodes.schemas import NodeCreate


def _add(ctx: Context, name: str, mac: str) -> None:
    with ctx.sessions() as s, s.begin():
        service.create_node(s, ctx.site, NodeCreate(hostname=name, mac=mac), actor="test")


def _unknown(rows: list[dict[str, object]]) -> set[object]:
    return {r["node"] for r in rows if r["status"] == "unknown"}


def test_scrapes_reuse_rows_until_inputs_change(ctx: Context) -> None:
    fc = metrics.FirmwareCollector(ctx.sessions, ctx.site)
    _add(ctx, "fw01", "02:00:00:00:0f:01")
    assert _unknown(fc.current_rows()) == {"fw01"} and fc.computed == 1
    for _ in range(5):
        fc.current_rows()
        list(fc.collect())
    assert fc.computed == 1  # nothing changed: no recomputation
    _add(ctx, "fw02", "02:00:00:00:0f:02")
    time.sleep(max(fc._cost * metrics.SHARE, 0.001) + 0.05)
    assert _unknown(fc.current_rows()) == {"fw01", "fw02"} and fc.computed == 2


def test_changes_within_the_window_get_the_last_rows(ctx: Context) -> None:
    fc = metrics.FirmwareCollector(ctx.sessions, ctx.site)
    _add(ctx, "fw03", "02:00:00:00:0f:03")
    fc.current_rows()
    fc._cost = 3600.0  # as if the last computation had been very slow: the window is `refresh`
    _add(ctx, "fw04", "02:00:00:00:0f:04")
    assert _unknown(fc.current_rows()) == {"fw03"} and fc.computed == 1  # stale, by design
    fc.refresh = 0.0
    assert _unknown(fc.current_rows()) == {"fw03", "fw04"} and fc.computed == 2


def test_unknown_nodes_are_counted_not_a_series_each(ctx: Context) -> None:
    fc = metrics.FirmwareCollector(ctx.sessions, ctx.site)
    _add(ctx, "fw05", "02:00:00:00:0f:05")
    per_node, totals = list(fc.collect())
    assert per_node.samples == []  # no scan: nothing known to be off the baseline
    assert {(s.labels["status"], s.value) for s in totals.samples} >= {("unknown", 1.0)}
