"""The bootstrap (handoff) worker under its leader lease (`jobs.leader.Leader`), on both databases.

A leader that died mid-bootstrap (its lease left to expire, its node left `bootstrapping`) is
replaced within the expiry: the new leader's worker resumes that node and runs its playbook once;
a third instance waiting beside it never runs one; a leader whose lease is taken from it stops
its worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from dgxie import db
from dgxie.boot.state import State
from dgxie.context import Context
from dgxie.handoff.runner import BootstrapWorker
from dgxie.jobs import lease
from dgxie.jobs.leader import Leader
from dgxie.models import Lease
from dgxie.models.types import utcnow
from dgxie.sections import InstanceConfig
from tests.support.handoff import add_node, node_state


def test_bootstrap_resumes_on_the_next_leader(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    fake = f"sh -c 'echo $4 >> {marker}' ansible-playbook"  # argv: -i INVENTORY --limit HOST PLAYBOOK
    ctx = make_ctx(roles={"ok": {"groups": ["kube_node"], "bootstrap": "ansible", "playbook": "ok.yml"}},
                   handoff={"enabled": True, "poll_seconds": 0.1, "ansible_playbook": fake})
    add_node(ctx, "gpu01", 1, role="ok", state=State.BOOTSTRAPPING)  # left so by the dead leader
    assert lease.acquire(ctx.sessions, "handoff-worker", "dead", 1.0)

    def leader(name: str) -> Leader:
        inst = InstanceConfig(id=name, heartbeat_seconds=0.2, expire_seconds=1.0)
        return Leader("handoff-worker", lambda: BootstrapWorker(ctx.sessions, ctx.site), ctx.sessions, inst)

    b, c = leader("b"), leader("c")

    async def go() -> float:
        start = time.monotonic()
        await b.start()
        await c.start()
        while node_state(ctx, "gpu01") != "ready":
            assert time.monotonic() - start < 10, node_state(ctx, "gpu01")
            await asyncio.sleep(0.05)
        took = time.monotonic() - start
        await asyncio.sleep(0.6)  # c keeps trying meanwhile
        leaders = [x.name for x in (b, c) if x.inner is not None]
        assert len(leaders) == 1 and b.held != c.held
        holder = b if b.inner is not None else c
        with db.session_scope(ctx.sessions) as s:  # the lease taken from the holder: its worker stops
            row = s.get(Lease, "handoff-worker")
            assert row is not None
            row.holder, row.expires_at = "thief", utcnow().replace(year=utcnow().year + 1)
        deadline = time.monotonic() + 5
        while holder.inner is not None:
            assert time.monotonic() < deadline, "the worker kept running without its lease"
            await asyncio.sleep(0.05)
        await b.stop()
        await c.stop()
        return took

    took = asyncio.run(go())
    assert took < 1.0 + 2.0, took
    assert marker.read_text().split() == ["gpu01"]  # resumed once, by one instance
