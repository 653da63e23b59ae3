"""Single enrollments written together (`nodes.enroll_batch`, `POST /api/v1/nodes`): concurrent
requests share transactions, and each still gets what a lone `service.create_node` would answer:
the node, a 409 for a value an enrolled node or an earlier request holds, a 422 for a bad row;
a unique violation found only at insert costs only the loser its node. Both databases."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select

from dgxie import db
from dgxie.context import Context
from dgxie.errors import DgxieError
from dgxie.models import Event, Node
from dgxie.nodes import bulk, enroll_batch, reads, service
from dgxie.nodes.enroll_batch import EnrollBatcher
from dgxie.nodes.schemas import InterfaceIn, NodeCreate, NodeOut


def _node(i: int, **kw: Any) -> NodeCreate:
    return NodeCreate(**{"hostname": f"gpu{i:03d}", "mac": f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}",
                         "tags": [f"rack{i % 3}"]} | kw)


def _run(batcher: EnrollBatcher, asks: list[tuple[NodeCreate, str]]) -> list[NodeOut | DgxieError]:
    async def main() -> list[NodeOut | DgxieError]:
        async def one(data: NodeCreate, actor: str) -> NodeOut | DgxieError:
            try:
                return await batcher.enroll(data, actor)
            except DgxieError as exc:
                return exc
        return list(await asyncio.gather(*(one(d, a) for d, a in asks)))
    return asyncio.run(main())


def test_concurrent_enrollments_share_commits_and_match_a_lone_enroll(ctx: Context) -> None:
    batcher = EnrollBatcher(ctx.sessions, ctx.site)
    outs = _run(batcher, [(_node(i), "token:a" if i % 5 else "token:b") for i in range(60)])
    assert all(isinstance(o, NodeOut) for o in outs)
    assert [o.hostname for o in outs if isinstance(o, NodeOut)] == [f"gpu{i:03d}" for i in range(60)]
    assert batcher.rows == 60 and batcher.batches < 30  # shared: 60 lone writes would be 60 batches
    with db.session_scope(ctx.sessions) as s, ctx.engine.connect() as conn:
        for o in outs:
            assert isinstance(o, NodeOut)
            assert o.model_dump_json() == reads.get(conn, o.hostname).model_dump_json()
        events = {e.hostname: e.actor for e in s.scalars(select(Event).where(Event.kind == "node.create"))}
    assert len(events) == 60 and events["gpu005"] == "token:b" and events["gpu006"] == "token:a"


def test_after_a_batch_the_next_waits_a_little_for_company(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a batch of 4, the next waits for 4 (at most its linger): two requests and two more
    0.1 s later are one batch; then two alone wait out the linger (0.4 s here, made long so that
    the test does not depend on the machine's speed) and are written. A lone request never waits."""
    monkeypatch.setattr(enroll_batch, "LINGER_SHARE", 1e6)
    monkeypatch.setattr(enroll_batch, "LINGER_MIN", 0.4)
    monkeypatch.setattr(enroll_batch, "LINGER_MAX", 0.4)
    batcher = EnrollBatcher(ctx.sessions, ctx.site)

    async def main() -> list[int]:
        sizes = []
        await asyncio.gather(*(batcher.enroll(_node(i), "t") for i in range(4)))
        sizes.append(batcher.rows)
        first = [asyncio.ensure_future(batcher.enroll(_node(i), "t")) for i in (4, 5)]
        await asyncio.sleep(0.1)
        await asyncio.gather(*first, *(batcher.enroll(_node(i), "t") for i in (6, 7)))
        sizes.append(batcher.batches)
        t = time.monotonic()
        await asyncio.gather(*(batcher.enroll(_node(i), "t") for i in (8, 9)))
        sizes.append(int(time.monotonic() - t >= 0.3))
        return sizes

    assert asyncio.run(main()) == [4, 2, 1]  # one batch of 4, then 4 together, then a linger waited out
    alone = EnrollBatcher(ctx.sessions, ctx.site)
    t = time.monotonic()
    _run(alone, [(_node(20), "t")])
    _run(alone, [(_node(21), "t")])
    assert time.monotonic() - t < 0.4 and alone.batches == 2  # batches of one: no wait


def test_each_request_gets_its_own_refusal(ctx: Context) -> None:
    with db.session_scope(ctx.sessions) as s:
        service.create_node(s, ctx.site, _node(900, ip="10.0.0.9"), actor="t")
    batcher = EnrollBatcher(ctx.sessions, ctx.site)
    outs = _run(batcher, [
        (_node(1), "t"),
        (_node(2, hostname="gpu001"), "t"),  # an earlier request's hostname: it wins, this is a 409
        (_node(3, mac="02:00:00:00:03:84"), "t"),  # gpu900's MAC
        (_node(4, profile="nope"), "t"),
        (_node(5, interfaces=[InterfaceIn(mac="02:00:00:00:00:05")]), "t"),  # its own MAC twice
        (_node(6, ip="10.0.0.9"), "t"),
        (_node(7), "t"),
    ])
    status = [o.status if isinstance(o, DgxieError) else 201 for o in outs]
    assert status == [201, 409, 409, 422, 422, 409, 201]
    detail = [o.detail for o in outs if isinstance(o, DgxieError)]
    assert detail == ["hostname gpu001 is already enrolled", "MAC 02:00:00:00:03:84 belongs to node gpu900",
                      "unknown profile 'nope'", "MAC 02:00:00:00:00:05 is listed twice",
                      "IP 10.0.0.9 belongs to node gpu900"]
    with db.session_scope(ctx.sessions) as s:
        assert sorted(s.scalars(select(Node.hostname))) == ["gpu001", "gpu007", "gpu900"]
        assert s.scalar(select(Node.id).where(Node.hostname == "gpu002")) is None


def test_a_unique_violation_at_insert_costs_only_the_loser(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race with a writer elsewhere (it takes a value between the check and the insert) is
    made by skipping the check once: the batch's insert then meets the unique constraint."""
    with db.session_scope(ctx.sessions) as s:
        service.create_node(s, ctx.site, _node(50), actor="t")
    real, skipped = bulk.problems, []

    def check_once(*args: Any, **kw: Any) -> list[bulk.Problem]:
        if not skipped:
            skipped.append(True)
            return []
        return real(*args, **kw)

    monkeypatch.setattr(bulk, "problems", check_once)
    batcher = EnrollBatcher(ctx.sessions, ctx.site)
    outs = _run(batcher, [(_node(10), "t"), (_node(11, hostname="gpu050"), "t"), (_node(12), "t")])
    assert isinstance(outs[0], NodeOut) and isinstance(outs[2], NodeOut)
    assert isinstance(outs[1], DgxieError) and outs[1].status == 409
    with db.session_scope(ctx.sessions) as s:
        assert sorted(s.scalars(select(Node.hostname))) == ["gpu010", "gpu012", "gpu050"]
        assert len(list(s.scalars(select(Event).where(Event.kind == "node.create")))) == 3
