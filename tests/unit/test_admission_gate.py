"""dgxie.api.admission.Gate: the in-flight limit, its FIFO queue and the Retry-After it advises;
the `api.*` sizes it and the connection pool come from.

No clock races: every wait here is either resolved by the test or bounded by a `wait` the test
expects to run out.
"""

from __future__ import annotations

import asyncio

import pydantic
import pytest

from dgxie.api.admission import SLOT, Gate, Slot, give_back
from dgxie.sections import ApiConfig


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_limit_then_queue_then_refusal() -> None:
    async def go() -> None:
        gate = Gate(limit=2, queue=1, wait=30)
        assert await gate.acquire() is None and await gate.acquire() is None
        waiter = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        assert gate.waiting == 1
        assert await gate.acquire() == "queue full"  # the one queue place is taken: refused at once
        gate.release()  # the slot goes to the waiter, not back to the pool
        assert await waiter is None and gate.inflight == 2 and gate.waiting == 0
        gate.release()
        gate.release()
        assert gate.inflight == 0

    run(go())


def test_a_slot_given_back_early_is_released_once() -> None:
    async def go() -> None:
        gate = Gate(limit=1, queue=1, wait=30)
        assert await gate.acquire() is None
        scope = {SLOT: Slot(gate)}
        give_back(scope)  # the request does no more database work of its own
        assert gate.inflight == 0 and await gate.acquire() is None  # another is admitted at once
        give_back(scope)
        scope[SLOT].release()  # the request's end: nothing more to release
        assert gate.inflight == 1
        give_back({})  # an ungated request: nothing to give back

    run(go())


def test_a_waiter_gives_up_after_wait_and_leaves_the_queue() -> None:
    async def go() -> None:
        gate = Gate(limit=1, queue=5, wait=0.05)
        assert await gate.acquire() is None
        assert await gate.acquire() == "wait"
        assert gate.waiting == 0 and gate.inflight == 1

    run(go())


def test_a_cancelled_waiter_handed_a_slot_passes_it_on() -> None:
    async def go() -> None:
        gate = Gate(limit=1, queue=5, wait=30)
        assert await gate.acquire() is None
        first = asyncio.create_task(gate.acquire())
        second = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        gate.release()
        assert await second is None and gate.inflight == 1 and gate.waiting == 0

    run(go())


def test_no_queueing_beyond_what_the_measured_rate_clears_in_time() -> None:
    async def go() -> None:
        gate = Gate(limit=1, queue=100, wait=0.5)
        gate.rate = 4.0  # completions per second: 2 waiters clear in 0.5 s, a third would not
        assert await gate.acquire() is None
        waiters = [asyncio.create_task(gate.acquire()) for _ in range(2)]
        await asyncio.sleep(0)
        assert gate.waiting == 2
        assert await gate.acquire() == "queue full"
        for _ in waiters:
            gate.release()
        assert await asyncio.gather(*waiters) == [None, None]

    run(go())


def test_retry_after_grows_while_refusals_outnumber_answers_and_stays_within_bounds() -> None:
    gate = Gate(limit=1, queue=0, wait=1, backoff=2, backoff_max=10)
    assert gate.retry_after() == 2
    seen = []
    for _ in range(6):
        gate._refused += 5  # in the second that passes: 6 refusals, no answers -> double (at most)
        gate._window -= 1.0
        seen.append(gate.retry_after())
    assert seen == [4, 8, 10, 10, 10, 10]
    for _ in range(3):
        gate._done += 100  # answers outnumber refusals: halve, never below backoff
        gate._window -= 1.0
        seen.append(gate.retry_after())
    assert seen[-3:] == [5, 3, 2]


def test_a_few_refusals_do_not_stretch_retry_after() -> None:
    gate = Gate(limit=1, queue=0, wait=1, backoff=7)
    gate._window -= 1.0
    assert [gate.retry_after(), gate.retry_after()] == [7, 7]
    gate._window -= 1.0
    assert gate.retry_after() == 7  # 2 refusals in that second, at most 2 x limit: no stretch


def test_api_config_sizes_the_pool_and_refuses_more_inflight_than_threads() -> None:
    api = ApiConfig()
    assert (api.threads, api.max_inflight, api.pool_size) == (40, 8, 21)  # + the batch writer, the node readers
    assert ApiConfig(max_inflight=30, threads=32).pool_size == 43
    with pytest.raises(pydantic.ValidationError, match="must leave 2 of the 8 threads free"):
        ApiConfig(max_inflight=7, threads=8)


def test_a_quiet_spell_does_not_read_as_a_low_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """A completion after a minute of silence is not a measurement of capacity: the next burst is
    queued as usual (before, the rate read 1/60 per second and every waiter was refused)."""
    import dgxie.api.admission as admission

    clock = [1000.0]
    monkeypatch.setattr(admission.time, "monotonic", lambda: clock[0])

    async def go() -> None:
        gate = Gate(limit=1, queue=100, wait=0.5)
        gate.rate = 40.0
        assert await gate.acquire() is None
        clock[0] += 60.0  # one request, then a quiet minute
        gate.release()
        assert gate.rate == 40.0
        assert await gate.acquire() is None
        waiters = [asyncio.create_task(gate.acquire()) for _ in range(8)]
        await asyncio.sleep(0)
        assert gate.waiting == 8  # all queued, none refused
        for _ in range(8):
            gate.release()
        assert await asyncio.gather(*waiters) == [None] * 8
        clock[0] += 1.2  # a busy second (waiters queued in it) is measured
        gate.release()
        assert gate.rate != 40.0

    run(go())
