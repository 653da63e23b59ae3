"""The `ansible` bootstrap method: a background worker that runs each installed node's playbook.

    ansible-playbook -i <dgxie inventory script> --limit NODE PLAYBOOK

The worker polls the database (so a restart loses nothing: a node left `bootstrapping` by a dead
process is run again at start; playbooks are idempotent), claims at most `concurrency` nodes at a
time, kills a run after `timeout_seconds` (its whole process group), and keeps the last
`output_tail_bytes` of the output in the node's `bootstrap.done` event. It also moves nodes whose
role bootstraps with `none` to `ready`, and fails cloud-init nodes whose script never reported back
within `timeout_seconds`. One worker per site: the composition root runs it under the leader lease
"handoff-worker" (`dgxie.jobs.leader.Leader`), so however many instances run, one runs it; when
that instance dies, the next leader's worker resumes the nodes it left `bootstrapping`. Its claims
also use SKIP LOCKED on PostgreSQL, so even two workers would never claim one node twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.boot.state import State
from dgxie.db import session_scope
from dgxie.events import record
from dgxie.handoff import bootstrap
from dgxie.handoff.procs import kill_tree
from dgxie.models import Node
from dgxie.models.types import utcnow
from dgxie.nodes.lifecycle import transition
from dgxie.site import Site

log = logging.getLogger("dgxie.handoff")
ACTOR = "handoff:ansible"


@dataclass(frozen=True)
class Job:
    node_id: int
    hostname: str
    playbook: str


@dataclass(frozen=True)
class RunResult:
    rc: int | None
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


def write_inventory_script(site: Site) -> Path:
    """`DATA_DIR/handoff/dgxie-inventory`: an executable that runs `dgxie inventory ansible "$@"`."""
    if site.handoff.inventory_script is not None:
        return site.handoff.inventory_script
    path = site.data_dir.resolve() / "handoff" / "dgxie-inventory"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["#!/bin/sh", "# Ansible dynamic inventory: dgxie's nodes in DeepOps' layout (written by dgxie)."]
    if site.config_path:
        lines.append(f"DGXIE_CONFIG={shlex.quote(str(Path(site.config_path).resolve()))}; export DGXIE_CONFIG")
    lines.append(f'exec {shlex.quote(sys.executable)} -m dgxie inventory ansible "$@"')
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o755)
    tmp.replace(path)
    return path


def playbook_argv(site: Site, inventory: Path, hostname: str, playbook: str) -> list[str]:
    pb = Path(playbook)
    if not pb.is_absolute() and site.handoff.playbook_dir is not None:
        pb = site.handoff.playbook_dir / pb
    return [*shlex.split(site.handoff.ansible_playbook), "-i", str(inventory), "--limit", hostname, str(pb)]


async def run_command(argv: list[str], *, timeout: float, tail_bytes: int, cwd: Path | None = None) -> RunResult:
    """Run `argv` in its own process group; keep only the output's tail; kill its tree on timeout."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PYTHONUNBUFFERED="1")
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
                                                    cwd=cwd, env=env, start_new_session=True)
    except OSError as exc:
        return RunResult(rc=None, output=f"{argv[0]}: {exc.strerror}")
    buf = bytearray()

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            buf.extend(chunk)
            if len(buf) > 2 * tail_bytes:
                del buf[:-tail_bytes]

    timed_out = False
    try:
        await asyncio.wait_for(asyncio.gather(pump(), proc.wait()), timeout)
    except (TimeoutError, asyncio.CancelledError) as exc:
        timed_out = isinstance(exc, TimeoutError)
        kill_tree(proc.pid)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 10)
        if not timed_out:
            raise
    out = bytes(buf[-tail_bytes:]).decode(errors="replace")
    if timed_out:
        out += f"\ndgxie: timed out after {timeout:g}s; killed"
    return RunResult(rc=proc.returncode, output=out, timed_out=timed_out)


class BootstrapWorker:
    """Polls for installed nodes and hands them off (a background service, dgxie/background.py)."""

    name = "handoff-worker"

    def __init__(self, sessions: sessionmaker[Session], site: Site) -> None:
        self.sessions = sessions
        self.site = site
        self.running: dict[int, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self.inventory: Path | None = None
        self.resume_pending = True

    def _ansible_roles(self) -> list[str]:
        return [n for n, r in self.site.roles.items() if r.bootstrap == "ansible"]

    def claim(self, limit: int, *, resume: bool = False) -> list[Job]:
        """Move up to `limit` installed ansible nodes to bootstrapping (or, at start, pick up the
        ones a previous process left bootstrapping); `none` roles go straight to ready."""
        roles = self._ansible_roles()
        jobs: list[Job] = []
        with session_scope(self.sessions) as s:
            for node in s.scalars(select(Node).where(Node.state == State.INSTALLED.value, Node.role.in_(
                    [n for n, r in self.site.roles.items() if r.bootstrap == "none"])).limit(100)):
                bootstrap.on_installed(s, self.site, node, actor=ACTOR)
            self._expire_scripts(s)
            state = State.BOOTSTRAPPING if resume else State.INSTALLED
            q = (select(Node).where(Node.state == state.value, Node.role.in_(roles))
                 .where(Node.id.not_in(list(self.running) or [-1])).order_by(Node.state_changed_at).limit(limit))
            if s.get_bind().dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True, of=Node)
            for node in s.scalars(q) if limit > 0 and roles else []:
                pb = self.site.roles[node.role or ""].playbook or ""
                if resume:
                    record(s, actor=ACTOR, kind="bootstrap.resume", node=node,
                                     reason="bootstrap interrupted by a restart; running the playbook again")
                else:
                    transition(s, node, State.BOOTSTRAPPING, actor=ACTOR, kind="bootstrap.start",
                               reason=f"ansible-playbook {pb}", data={"method": "ansible", "playbook": pb})
                jobs.append(Job(node.id, node.hostname, pb))
        return jobs

    def _expire_scripts(self, s: Session) -> None:
        """cloud-init nodes that fetched their script but never reported within the timeout -> failed."""
        roles = [n for n, r in self.site.roles.items() if r.bootstrap == "cloud-init"]
        cutoff = utcnow() - timedelta(seconds=self.site.handoff.timeout_seconds)
        for node in s.scalars(select(Node).where(Node.state == State.BOOTSTRAPPING.value, Node.role.in_(roles),
                                                 Node.state_changed_at < cutoff).limit(100)):
            transition(s, node, State.FAILED, actor="handoff:cloud-init", kind="bootstrap.done",
                       reason=f"cloud-init bootstrap failed: no report within {self.site.handoff.timeout_seconds:g}s",
                       data={"method": "cloud-init", "timed_out": True})

    def finish(self, job: Job, result: RunResult) -> None:
        with session_scope(self.sessions) as s:
            node = s.get(Node, job.node_id)
            if node is None or node.state != State.BOOTSTRAPPING.value:
                log.warning("bootstrap of %s finished but the node is gone or no longer bootstrapping", job.hostname)
                return
            bootstrap.finish(s, self.site, node, ok=result.ok, output=result.output, actor=ACTOR, method="ansible",
                             extra={"rc": result.rc, "timed_out": result.timed_out, "playbook": job.playbook})

    async def run_job(self, job: Job) -> None:
        assert self.inventory is not None
        argv = playbook_argv(self.site, self.inventory, job.hostname, job.playbook)
        log.info("bootstrap %s: %s", job.hostname, shlex.join(argv))
        try:
            result = await run_command(argv, timeout=self.site.handoff.timeout_seconds,
                                       tail_bytes=self.site.handoff.output_tail_bytes,
                                       cwd=self.site.handoff.playbook_dir)
            await asyncio.to_thread(self.finish, job, result)
        except Exception:
            log.exception("bootstrap of %s", job.hostname)
        finally:
            self.running.pop(job.node_id, None)

    def _spawn(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.running[job.node_id] = asyncio.create_task(self.run_job(job), name=f"bootstrap-{job.hostname}")

    async def poll_once(self) -> None:
        """Resume what a previous process left bootstrapping (first), then claim installed nodes."""
        free = max(self.site.handoff.concurrency - len(self.running), 0)
        if self.resume_pending:
            jobs = await asyncio.to_thread(self.claim, free, resume=True)
            self.resume_pending = len(jobs) >= free > 0 or free == 0
            self._spawn(jobs)
            free -= len(jobs)
        self._spawn(await asyncio.to_thread(self.claim, free))

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:
                log.exception("handoff worker poll")
            await asyncio.sleep(self.site.handoff.poll_seconds)

    async def start(self) -> None:
        self.inventory = await asyncio.to_thread(write_inventory_script, self.site)
        self._loop_task = asyncio.create_task(self._loop(), name="handoff-worker")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self.running.values()) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
