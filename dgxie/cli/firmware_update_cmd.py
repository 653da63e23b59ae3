"""`dgxie firmware update`: create a firmware update job (as `POST /api/v1/firmware/updates` does)
and follow it with a progress bar until it ends.

The job goes on the site's job queue and is run by whoever claims it: a running `dgxie serve`
(any role but `boot`) normally takes it within `--wait-server` seconds; if none has by then, this
command claims it and runs it itself (`--wait-server 0`: at once, the job born claimed by it, so no
server can take it first). Ctrl-C cancels the nodes that
have not started and waits for those in flight; a second Ctrl-C leaves (a job this command was
running stays `running` until its heartbeat is stale, `instance.expire_seconds`; then a server
claims it and resumes it).

Exit 0 when every node to update was updated (nodes skipped because they have no BMC or are
compliant with the baseline do not count), 1 on bad input (nothing is queued), 2 when the job
ended `failed` or `cancelled` (`--json` prints the job with every node either way).
"""

from __future__ import annotations

import threading
import time

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dgxie.cli.common import actor, dump_json, err_console, session
from dgxie.cli.common import sessions as cli_sessions
from dgxie.cli.common import site as cli_site
from dgxie.errors import Conflict, Invalid
from dgxie.firmware import update_jobs
from dgxie.firmware.update_jobs import UpdateIn, UpdateOut
from dgxie.firmware.update_worker import cli_owner, run_here
from dgxie.models import Job

NOT_UPDATED = 2  # the job failed or was cancelled: some nodes were not updated
TICK = 0.2  # seconds between progress reads


def _body(**fields: object) -> UpdateIn:
    try:
        return UpdateIn.model_validate(fields)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(p) for p in e["loc"])
        raise Invalid(f"{where + ': ' if where else ''}{e['msg'].removeprefix('Value error, ')}") from None


def _read(update_id: int) -> UpdateOut:
    with session() as s:
        return update_jobs.to_out(s, update_jobs.get(s, update_id))


def _last(job: UpdateOut) -> str:
    live = [n for n in job.nodes if n.status in ("draining", "uploading", "running")]
    if not live:
        return job.status
    n = live[0]
    pct = f" {n.percent}%" if n.percent is not None else ""
    return f"{n.node} {n.status}{' ' + n.task_state if n.task_state else ''}{pct}" + \
        (f" (+{len(live) - 1})" if len(live) > 1 else "")


def _queued(job_id: int | None) -> bool:
    """Whether the update's queue job still waits for a claimer."""
    with session() as s:
        job = s.get(Job, job_id) if job_id is not None else None
        return job is not None and job.status == "queued"


def _follow(update_id: int, job_id: int | None, wait_server: float, claimed: bool, as_json: bool) -> UpdateOut:
    site, sessions = cli_site(), cli_sessions()
    worker: threading.Thread | None = None

    def start_here() -> threading.Thread:
        t = threading.Thread(target=run_here, args=(sessions, site, job_id), kwargs={"claimed": claimed},
                             daemon=True, name=f"dgxie-fw-update-{update_id}")
        t.start()
        return t

    if claimed:
        worker = start_here()
    since, interrupted = time.monotonic(), 0
    job = _read(update_id)
    total = sum(1 for n in job.nodes if n.wave is not None)
    with Progress(TextColumn(f"update {update_id}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=err_console,
                  transient=as_json) as bar:
        task = bar.add_task("update", total=total, last="queued")
        while True:
            try:
                job = _read(update_id)
                done = sum(1 for n in job.nodes if n.wave is not None and n.status in update_jobs.NODE_FINAL)
                bar.update(task, completed=done, last=_last(job))
                if job.status in update_jobs.FINAL and (worker is None or not worker.is_alive()):
                    return job
                if worker is None and job_id is not None and time.monotonic() - since >= wait_server \
                        and _queued(job_id):
                    worker = start_here()  # no server took it: run it here (its claim decides, once)
                time.sleep(TICK)
            except KeyboardInterrupt:
                interrupted += 1
                if interrupted > 1:
                    err_console.print(f"left firmware update {update_id} running (dgxie serve resumes it)")
                    raise
                try:
                    with session() as s:
                        update_jobs.cancel(s, update_id, actor=actor())
                    err_console.print("cancelled the nodes not started; waiting for those in flight "
                                      "(Ctrl-C again to leave)")
                except Conflict:
                    pass


def update_(node: list[str] = typer.Argument(None, help="nodes, updated in this order"),
            tag: list[str] = typer.Option([], "--tag", help="or: the nodes with every one of these tags (repeat)"),
            package: str = typer.Option(..., help="SHA256/NAME of a staged package (see `firmware stage`)"),
            baseline: bool = typer.Option(False, "--baseline", help="only nodes outdated against their baseline "
                                                                    "(the targeted components)"),
            target: list[str] = typer.Option([], help="Redfish Targets (repeat); default: the BMC decides"),
            batch: int = typer.Option(1, help="nodes updated at once (a wave); stop after a failed wave"),
            drain: bool = typer.Option(True, "--drain/--no-drain", help="drain ready nodes from their scheduler "
                                                                          "first (their role's hook)"),
            multipart: bool = typer.Option(False, help="push the file (MultipartHttpPushUri) instead of ImageURI"),
            timeout: float = typer.Option(3600, help="seconds to wait for each node's update task"),
            poll: float = typer.Option(5.0, help="seconds between task polls"),
            wait_server: float = typer.Option(3.0, help="seconds to let a running server take the job before "
                                                        "running it here (0: run it here)"),
            as_json: bool = typer.Option(False, "--json", help="print the job as JSON")) -> None:
    """Rolling firmware update through Redfish as a job (the same as POST /api/v1/firmware/updates),
    followed with a progress bar; each wave is rescanned after its tasks end. Ctrl-C cancels the
    nodes not started. Exit 0: updated; 1: bad input; 2: failed or cancelled."""
    body = _body(nodes=node or [], tags=tag, package=package, baseline=baseline, targets=target, batch=batch,
                 drain=drain, multipart=multipart, timeout=timeout, poll=poll)
    if wait_server < 0:
        raise Invalid("--wait-server: 0 or more seconds")
    owner = cli_owner(cli_site()) if wait_server == 0 else None  # 0: born claimed by this process
    with session() as s:
        made = update_jobs.create(s, cli_site(), body, actor=actor(), owner=owner)
        update_id, job_id = made.id, made.job_id
    job = _follow(update_id, job_id, wait_server, owner is not None, as_json)
    if as_json:
        dump_json(job.model_dump(mode="json"))
    else:
        for n in job.nodes:
            print(f"{n.node}: {n.status}{' (' + n.task_state + ')' if n.task_state else ''}"
                  f"{' - ' + n.message if n.message else ''}")
    c = job.counts
    err_console.print(f"firmware update {job.id} {job.status}: {c.get('done', 0)} updated, {c.get('failed', 0)} "
                      f"failed, {c.get('skipped', 0)} skipped, {c.get('cancelled', 0)} cancelled", highlight=False)
    if job.status != "done":
        raise typer.Exit(NOT_UPDATED)
