"""The background-service shape: a Supervisor starts in order, stops in reverse, and a start that
fails stops the ones already started; Periodic keeps going after an error."""

from __future__ import annotations

import asyncio

import pytest

from dgxie.background import Periodic, Supervisor


class Svc:
    def __init__(self, name: str, log: list[str], *, fail_start: bool = False, fail_stop: bool = False) -> None:
        self.name, self.log, self.fail_start, self.fail_stop = name, log, fail_start, fail_stop

    async def start(self) -> None:
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError(f"{self.name} stops badly")


def test_started_in_order_stopped_in_reverse_even_if_one_stop_fails() -> None:
    log: list[str] = []
    sup = Supervisor([Svc("a", log), Svc("b", log, fail_stop=True), Svc("c", log)])

    async def run() -> None:
        await sup.start()
        await sup.stop()
        await sup.stop()  # a second stop stops nothing twice

    asyncio.run(run())
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


def test_a_failed_start_stops_the_started_ones_and_raises() -> None:
    log: list[str] = []
    sup = Supervisor([Svc("a", log), Svc("b", log), Svc("c", log, fail_start=True), Svc("d", log)])
    with pytest.raises(RuntimeError, match="c cannot start"):
        asyncio.run(sup.start())
    assert log == ["start a", "start b", "stop b", "stop a"]
    assert sup.started == []


def test_periodic_runs_again_after_an_error_and_stops() -> None:
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("a database hiccup")

    async def run() -> Periodic:
        p = Periodic("t", work, every=0.01)
        await p.start()
        for _ in range(200):  # bounded: at most 2 s
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
        await p.stop()
        return p

    p = asyncio.run(run())
    assert len(calls) >= 3 and p.name == "t"
    n = len(calls)
    asyncio.run(asyncio.sleep(0.05))
    assert len(calls) == n, "stopped for good"


class Slow(Svc):
    async def stop(self) -> None:
        await asyncio.sleep(0.3)
        self.log.append(f"stop {self.name}")


def test_a_stop_past_the_budget_is_named_and_still_completes(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    sup = Supervisor([Svc("a", log), Slow("b", log), Svc("c", log)], stop_within=0.1)

    async def run() -> None:
        await sup.start()
        await sup.stop()

    asyncio.run(run())
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]  # b finished its stop
    assert "background service b is still stopping after" in caplog.text
    assert "service a is still" not in caplog.text and "service c is still" not in caplog.text
