"""Group commit for single enrollments, `POST /api/v1/nodes` (issue 14).

Each POST was its own transaction through the ORM: three uniqueness lookups, a unit-of-work flush
of the node, its interfaces and its event, a commit (~4 ms of a core). Enrollments that arrive
while one is being written now wait for it and are then written together, as one
`bulk.create_nodes` transaction: the checks and rows of `POST /api/v1/nodes/bulk`, one
`node.create` event per node, one commit for the lot. A request that finds nobody
writing is written at once (a batch of one), so an idle server answers as before and a busy one
shares its commits (a database's group commit).

Under load a batch waits a little for company. After a batch of `LINGER_AFTER` or more, the next
waits for the last batch's clients to come back (as many as it held, plus those already waiting),
at most half the last write's duration (2-20 ms): those clients are answered, send their next
request and are parsed on the event loop while the writer is idle, so without the wait one or two
early arrivals made a batch of their own and the batches alternated 1 and 15 (each batch costs a
commit and ~8 round trips whatever its size: 16 as one batch wrote 1.6x more per second on
PostgreSQL, bench/RESULTS.md). A lone client's batches are of one: it never waits.

Each request still gets the answer it would get written alone, in arrival order:
- a row that collides with an enrolled node gets the single POST's 409 (`hostname gpu01 is
  already enrolled`, `MAC ... belongs to node ...`), a bad one its 422; the rest are written;
- two requests naming the same hostname, MAC or IP are never in one batch: the later one waits
  for the next, where it meets the earlier as an enrolled node (409);
- when the write fails at insert (a unique violation: a writer elsewhere took a value since the
  check), every row of the batch is written again alone, so only the loser gets the 409;
- an error of the database itself (unavailable) is every waiter's error.
A batch holds one actor's requests (the events name it), at most `MAX_BATCH`.

The writer holds one connection of its own while it writes, so a request waiting here does no
database work: the API gives its admission slot back while it waits (`api.admission.give_back`),
and more requests can join the next batch than the gate admits at once (a batch was at most
`api.max_inflight`, 8, and under load alternated 1 and 7: each batch costs one commit and ~10
round trips whatever its size). `room` bounds that: past `MAX_WAITING` waiters a request keeps
its slot while it waits, so the gate's queue and its 503s hold the rest back.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from anyio import to_thread
from sqlalchemy.orm import Session, sessionmaker

from dgxie.db import session_scope
from dgxie.errors import Conflict, DgxieError, Invalid
from dgxie.nodes import bulk, reads
from dgxie.nodes.schemas import NodeCreate, NodeOut
from dgxie.site import Site

MAX_BATCH = 256
MAX_WAITING = 256  # waiters beyond which a request keeps its admission slot while it waits
LINGER_AFTER = 2  # after a batch at least this big, the next waits a little for company (below)
LINGER_SHARE, LINGER_MIN, LINGER_MAX = 0.5, 0.002, 0.020  # that wait: half the last write, within 2-20 ms
Outcome = NodeOut | DgxieError


@dataclass
class _Ask:
    data: NodeCreate
    actor: str
    future: asyncio.Future[NodeOut] = field(repr=False)


def _keys(d: NodeCreate) -> set[tuple[str, str]]:
    keys = {("hostname", d.hostname)} | {("MAC", m) for m in [d.mac, *[i.mac for i in d.interfaces]]}
    return keys | ({("IP", d.ip)} if d.ip else set())


def _listed_twice(d: NodeCreate) -> str | None:
    seen: set[str] = set()
    for mac in [d.mac, *[i.mac for i in d.interfaces]]:
        if mac in seen:
            return mac
        seen.add(mac)
    return None


def _error(p: bulk.Problem) -> DgxieError:
    err = DgxieError(p.detail)
    err.status = p.status  # 409 or 422, as the lone POST answers it
    return err


class EnrollBatcher:
    """Single enrollments written in batches; one per app (its event loop). `batches` and `rows`
    count what was written together, `waiting` and `writing` what is in hand now (the metrics of
    `api.metrics.EnrollCollector`)."""

    def __init__(self, sessions: sessionmaker[Session], site: Site) -> None:
        self._sessions, self._site = sessions, site
        self._waiting: list[_Ask] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = self.rows = 0
        self.writing = 0  # requests in the batch being written now
        self._want = 0  # waiters a lingering writer waits for
        self._more = asyncio.Event()  # set when that many wait

    @property
    def waiting(self) -> int:
        """Requests waiting for a batch (not those being written)."""
        return len(self._waiting)

    @property
    def room(self) -> bool:
        """Whether a request may wait here without its admission slot (fewer than MAX_WAITING do)."""
        return len(self._waiting) < MAX_WAITING

    async def enroll(self, data: NodeCreate, actor: str) -> NodeOut:
        """The enrolled node, or the `DgxieError` a lone `service.create_node` would raise."""
        ask = _Ask(data, actor, asyncio.get_running_loop().create_future())
        ask.future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved if nobody waits
        self._waiting.append(ask)
        if len(self._waiting) >= self._want:
            self._more.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await asyncio.shield(ask.future)  # a client gone away does not stop its batch

    async def _drain(self) -> None:
        last, took = 0, 0.0
        loop = asyncio.get_running_loop()
        self._more = asyncio.Event()  # of this task's loop
        while True:
            if last >= LINGER_AFTER:  # under load: wait for the last batch's clients to come back
                self._want = min(last + len(self._waiting), MAX_BATCH)
                if len(self._waiting) < self._want:
                    self._more.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(max(took * LINGER_SHARE, LINGER_MIN), LINGER_MAX)):
                            await self._more.wait()
                self._want = 0
            if not self._waiting:
                return
            batch = self._take()
            last = self.writing = len(batch)
            started = loop.time()
            try:
                outcomes: list[Outcome] = await to_thread.run_sync(self._write, batch)
                took = loop.time() - started
            except Exception as exc:  # the database itself: every waiter's error
                for ask in batch:
                    if not ask.future.done():
                        ask.future.set_exception(exc)
                continue
            finally:
                self.writing = 0
            for ask, outcome in zip(batch, outcomes, strict=True):
                if ask.future.done():
                    continue
                if isinstance(outcome, DgxieError):
                    ask.future.set_exception(outcome)
                else:
                    ask.future.set_result(outcome)

    def _take(self) -> list[_Ask]:
        """The oldest waiter's actor's requests in arrival order, up to MAX_BATCH, none sharing a
        hostname, MAC or IP with any request that arrived before it and is still waiting."""
        actor = self._waiting[0].actor
        batch: list[_Ask] = []
        rest: list[_Ask] = []
        taken: set[tuple[str, str]] = set()
        for ask in self._waiting:
            keys = _keys(ask.data)
            if ask.actor == actor and len(batch) < MAX_BATCH and not keys & taken:
                batch.append(ask)
            else:
                rest.append(ask)
            taken |= keys
        self._waiting = rest
        return batch

    def _write(self, batch: list[_Ask]) -> list[Outcome]:
        try:
            return self._together(batch)
        except Conflict:  # a unique violation at insert: find the loser, each row alone
            if len(batch) == 1:
                raise
            return [self._alone(ask) for ask in batch]

    def _alone(self, ask: _Ask) -> Outcome:
        try:
            return self._together([ask])[0]
        except Conflict as exc:
            return exc

    def _together(self, batch: list[_Ask]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(batch)
        rows = []
        for i, ask in enumerate(batch):
            twice = _listed_twice(ask.data)
            if twice:
                outcomes[i] = Invalid(f"MAC {twice} is listed twice")
            else:
                rows.append(bulk.Row(str(i), ask.data))
        with session_scope(self._sessions) as s:
            bad: dict[str, bulk.Problem] = {}
            found = bulk.profiles(s, rows)  # read once for the checks and the writes
            for p in bulk.problems(s, self._site, rows, found):
                bad.setdefault(p.row.where, p)
            good = [r for r in rows if r.where not in bad]
            made = (bulk.create_nodes(s, self._site, good, actor=batch[0].actor, checked=True, found=found)
                    if good else [])
            outs = reads.many(s.connection(), [m.id for m in made])
        for r in rows:
            outcomes[int(r.where)] = _error(bad[r.where]) if r.where in bad else None
        for r, m in zip(good, made, strict=True):
            outcomes[int(r.where)] = outs[m.id]
        self.batches += 1
        self.rows += len(good)
        done = [o for o in outcomes if o is not None]
        assert len(done) == len(batch), "every request of the batch has its outcome"
        return done
