"""Drain/resume hooks: real commands, output in events, a failing drain aborts and is still recorded."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from dgxie import db
from dgxie.boot.state import State
from dgxie.context import Context
from dgxie.errors import Conflict
from dgxie.handoff import bootstrap, hooks
from dgxie.models import Event
from dgxie.nodes.lifecycle import transition
from dgxie.nodes.service import get_node
from tests.support.handoff import add_node


def hook_events(ctx: Context, hostname: str) -> list[Event]:
    with db.session_scope(ctx.sessions) as s:
        return list(s.scalars(select(Event).where(Event.hostname == hostname, Event.kind.in_(hooks.KINDS))
                              .order_by(Event.id)))


@pytest.fixture
def hctx(make_ctx: Callable[..., Context], tmp_path: Path) -> Context:
    log = tmp_path / "scheduler.log"
    roles = {
        "slurmd": {"groups": ["slurm-node"],
                   "drain": f"sh -c 'echo drain {{hostname}} >> {log}; echo drained {{hostname}}'",
                   "resume": f"sh -c 'echo resume {{hostname}} >> {log}; echo resumed'"},
        "stuck": {"groups": ["kube_node"], "drain": "sh -c 'echo node busy: 3 jobs running >&2; exit 3'"},
        "plain": {"groups": ["kube_node"]},
    }
    return make_ctx(roles=roles, handoff={"enabled": False, "hook_timeout_seconds": 20})


def test_drain_then_resume_when_ready_again(hctx: Context, tmp_path: Path) -> None:
    add_node(hctx, "gpu01", 1, role="slurmd", state=State.READY)
    with db.session_scope(hctx.sessions) as s:
        node = get_node(s, "gpu01")
        res = hooks.drain(s, hctx.site, node, "test")
        assert res.ran and res.ok and res.output == "drained gpu01\n"
        transition(s, node, State.ENROLLED, actor="test", reason="reprovision")  # what reprovision does next
    assert (tmp_path / "scheduler.log").read_text() == "drain gpu01\n"
    with db.session_scope(hctx.sessions) as s:
        node = get_node(s, "gpu01")
        for st in (State.INSTALLING, State.INSTALLED):
            transition(s, node, st, actor="test", reason="reinstall")
        assert bootstrap.on_installed(s, hctx.site, node, actor="test") == "none"
    assert (tmp_path / "scheduler.log").read_text() == "drain gpu01\nresume gpu01\n"
    evs = hook_events(hctx, "gpu01")
    assert [(e.kind, e.data["ok"], e.data["output_tail"]) for e in evs] == [
        ("hook.drain", True, "drained gpu01\n"), ("hook.resume", True, "resumed\n")]
    with db.session_scope(hctx.sessions) as s:  # not drained any more: nothing to resume
        assert not hooks.resume_if_drained(s, hctx.site, get_node(s, "gpu01"), actor="test").ran


def test_failing_drain_aborts_and_is_recorded(hctx: Context) -> None:
    add_node(hctx, "gpu02", 2, role="stuck", state=State.READY)
    with pytest.raises(Conflict, match=r"gpu02: drain hook failed \(node busy: 3 jobs running\)"), \
            db.session_scope(hctx.sessions) as s:
        node = get_node(s, "gpu02")
        hooks.drain(s, hctx.site, node, "test")
        transition(s, node, State.ENROLLED, actor="test", reason="never reached")
    with db.session_scope(hctx.sessions) as s:
        assert get_node(s, "gpu02").state == "ready"
    (ev,) = hook_events(hctx, "gpu02")
    assert ev.kind == "hook.drain" and ev.data["ok"] is False and ev.data["rc"] == 3
    with db.session_scope(hctx.sessions) as s:
        assert not hooks.drained(s, get_node(s, "gpu02"))  # a failed drain leaves nothing to resume


def test_no_hook_or_not_ready_is_a_no_op(hctx: Context, tmp_path: Path) -> None:
    add_node(hctx, "gpu03", 3, role="plain", state=State.READY)
    add_node(hctx, "gpu04", 4, role="slurmd", state=State.INSTALLED)
    with db.session_scope(hctx.sessions) as s:
        assert not hooks.drain(s, hctx.site, get_node(s, "gpu03"), "test").ran
        assert not hooks.drain(s, hctx.site, get_node(s, "gpu04"), "test").ran
    assert not (tmp_path / "scheduler.log").exists()
    assert hook_events(hctx, "gpu03") == [] and hook_events(hctx, "gpu04") == []


def test_hanging_drain_times_out_and_leaves_no_process(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    marker = str(tmp_path)
    ctx = make_ctx(roles={"slow": {"groups": ["kube_node"], "drain": f"sh -c 'sleep 600 & sleep 600; echo {marker}'"}},
                   handoff={"enabled": False, "hook_timeout_seconds": 2})
    add_node(ctx, "gpu05", 5, role="slow", state=State.READY)
    t0 = time.monotonic()
    with pytest.raises(Conflict, match="timed out after 2s"), db.session_scope(ctx.sessions) as s:
        hooks.drain(s, ctx.site, get_node(s, "gpu05"), "test")
    assert time.monotonic() - t0 < 30
    assert leftovers(marker) == []


def leftovers(marker: str) -> list[str]:
    out = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and marker.encode() in (p / "cmdline").read_bytes():
                out.append(p.name)
        except OSError:
            continue
    return out
