"""The firmware update job kind on the site's job queue (`dgxie.jobs`): its handler, and the CLI's
way to run a job itself.

`POST /api/v1/firmware/updates` and `dgxie firmware update` queue one queue job of kind
`firmware.update` per update (`update_jobs.create`). An instance's `JobWorker` (every role but
`boot`) claims it, so it runs once however many instances run, and `handler()` runs
`update.run_update()` with the queue's heartbeat. When that instance dies, its heartbeat goes
stale and another instance claims the job again (a takeover): `run_update()` resumes from the
rows (nodes done are never flashed again; a node's known Redfish Task is followed, not
restarted). When the instance stops (SIGTERM), the handler stops before the next wave and the job
goes back to the queue. A cancel (`update_jobs.cancel`, `DELETE /api/v1/firmware/updates/{id}`)
reaches the handler through the queue job's cancel request and the update's own flag.

`run_here()` is what `dgxie firmware update` does when no server took the job within
`--wait-server` seconds: it claims that one job and runs it in the calling thread.
"""

from __future__ import annotations

import os

from sqlalchemy.orm import Session, sessionmaker

from dgxie.firmware.update import run_update
from dgxie.firmware.update_jobs import KIND
from dgxie.jobs import queue
from dgxie.jobs.queue import Claimed
from dgxie.jobs.worker import Handler, JobHandle, JobKinds, JobWorker, Stopped
from dgxie.models import Job
from dgxie.site import Site


def handler(sessions: sessionmaker[Session], site: Site) -> Handler:
    """The `firmware.update` handler: run (or resume) the update named by the payload."""

    def run(job: JobHandle) -> None:
        run_update(sessions, site, int(job.payload["update"]), cancelled=job.cancel_requested.is_set,
                   heartbeat=job.heartbeat, stop=lambda: job.lost.is_set() or job.worker.stopping.is_set())
        if job.cancel_requested.is_set():
            raise Stopped  # the update ended `cancelled`: so does its queue job

    return run


def register(kinds: JobKinds, sessions: sessionmaker[Session], site: Site) -> None:
    kinds.register(KIND, handler(sessions, site))


def cli_owner(site: Site) -> str:
    """The job owner name of this CLI process: `<instance id>:cli:<pid>`."""
    return f"{site.instance.id}:cli:{os.getpid()}"[:64]


def run_here(sessions: sessionmaker[Session], site: Site, job_id: int, *, claimed: bool = False) -> str | None:
    """Run queue job `job_id` in this process as `cli_owner()`: claim it first, unless it was born
    claimed by this process (`update_jobs.create(..., owner=cli_owner(site))`). The outcome (`done`,
    `failed`, `cancelled`), or None when another instance holds it (or took it over meanwhile)."""
    inst = site.instance.model_copy(update={"id": cli_owner(site)})
    kinds = JobKinds()
    register(kinds, sessions, site)
    if claimed:
        with sessions() as s:
            job = s.get(Job, job_id)
            mine = job is not None and job.owner == inst.id and job.status == "running"
            got = Claimed(job.id, job.kind, job.key, dict(job.payload or {}), job.attempts) if mine and job else None
    else:
        got = queue.claim(sessions, inst.id, [KIND], expire=inst.expire_seconds, job_id=job_id)
    if got is None:
        return None
    return JobWorker(sessions, inst, kinds, concurrency=1).run_here(got)
