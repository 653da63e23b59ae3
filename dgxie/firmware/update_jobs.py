"""Firmware update jobs: create, read and cancel the rows of `firmware_updates` (each runs as a queue job).

A job names its nodes (`nodes`, in the order given, or `tags`: nodes with every tag, by
hostname), a staged package (`SHA256/NAME`), Redfish `targets`, a wave size `batch`, whether to
`drain` ready nodes from their scheduler first, and with `baseline` only the nodes whose last
scan is outdated (or missing a component) against their platform's baseline for the targeted
components; the others are `skipped` at once with the reason, as are nodes without a BMC.
A baseline names versions, not images, so a package is always given.

`create()` is what the API (`POST /api/v1/firmware/updates`) and `dgxie firmware update` both
call: it queues the job on the site's job queue (`dgxie.jobs`, kind `firmware.update`, one
queue job per update), which runs it once however many instances run and resumes it on another
instance when the one running it dies; `dgxie.firmware.update_worker` is the queue handler and
`dgxie.firmware.update.run_update()` the work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dgxie.errors import Conflict, Invalid, NotFound
from dgxie.events import record
from dgxie.firmware import compliance, packages
from dgxie.jobs import queue
from dgxie.models import FirmwareUpdate, FirmwareUpdateNode, Node
from dgxie.nodes import service as nodes_svc
from dgxie.nodes.power_waves import PowerSelector, select_nodes
from dgxie.site import Site

MAX_NODES = 10_000
FINAL = ("done", "failed", "cancelled")  # a job's final states
NODE_FINAL = ("done", "failed", "skipped", "cancelled")
KIND = "firmware.update"  # the queue job kind that runs an update (payload {"update": id})
JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
NodeStatus = Literal["pending", "draining", "uploading", "running", "done", "failed", "skipped", "cancelled"]


class UpdateIn(BaseModel):
    """A firmware update request: exactly one of `nodes` and `tags`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"nodes": ["gpu01", "gpu02"], "package": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08/"
         "bmc.fwpkg", "targets": ["/redfish/v1/UpdateService/FirmwareInventory/HostBMC_0"], "batch": 1},
        {"tags": ["rack7"], "package": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08/bmc.fwpkg",
         "baseline": True, "batch": 4, "drain": True}]})
    nodes: list[str] = Field(default_factory=list, max_length=MAX_NODES)
    tags: list[str] = Field(default_factory=list, max_length=64)
    package: str = Field(max_length=200, description="SHA256/NAME of a staged package (`dgxie firmware stage`)")
    baseline: bool = Field(False, description="only nodes outdated against their baseline (the targeted components)")
    targets: list[str] = Field(default_factory=list, max_length=64)
    batch: int = Field(1, ge=1, le=1000, description="nodes updated at once (a wave); stop after a failed wave")
    drain: bool = Field(True, description="run a ready node's role drain hook first, its resume hook after")
    multipart: bool = Field(False, description="push the file (MultipartHttpPushUri) instead of an ImageURI")
    timeout: float = Field(3600, gt=0, le=86400, description="seconds to wait for each node's Redfish Task")
    poll: float = Field(5.0, ge=0.01, le=60, description="seconds between Task polls")

    @model_validator(mode="after")
    def _one_selector(self) -> UpdateIn:
        if bool(self.nodes) == bool(self.tags):
            raise ValueError("name nodes or tags (one of them)")
        if any(not t or len(t) > 255 for t in self.targets):
            raise ValueError("targets: each 1..255 characters")
        return self


class UpdateNodeOut(BaseModel):
    node: str
    wave: int | None
    status: NodeStatus
    task: str | None = None
    task_state: str | None = None
    percent: int | None = None
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


class UpdateOut(BaseModel):
    """A firmware update job and every node's progress (Redfish Task state and percent)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 3, "selector": {"nodes": ["gpu01", "gpu02"]}, "package": "9f86.../bmc.fwpkg", "baseline": False,
        "targets": [], "batch": 1, "drain": True, "multipart": False, "status": "running", "cancel_requested": False,
        "actor": "token:ops", "created_at": "2026-11-30T08:00:00Z", "started_at": "2026-11-30T08:00:01Z",
        "finished_at": None, "error": None, "counts": {"done": 1, "running": 1}, "nodes": [
            {"node": "gpu01", "wave": 1, "status": "done", "task": "/redfish/v1/TaskService/Tasks/4",
             "task_state": "Completed", "percent": 100, "message": "updated"},
            {"node": "gpu02", "wave": 2, "status": "running", "task": "/redfish/v1/TaskService/Tasks/9",
             "task_state": "Running", "percent": 40, "message": ""}]}]})
    id: int
    selector: dict[str, list[str]]
    package: str
    baseline: bool
    targets: list[str]
    batch: int
    drain: bool
    multipart: bool
    status: JobStatus
    cancel_requested: bool
    actor: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    counts: dict[str, int]
    nodes: list[UpdateNodeOut]


def find_package(site: Site, ref: str) -> packages.Package:
    sha, _, name = ref.partition("/")
    try:
        return packages.find(site, sha, name)
    except NotFound:
        raise Invalid(f"package: no staged package {ref!r} (SHA256/NAME, see `dgxie firmware stage`)") from None


def _select(session: Session, body: UpdateIn) -> list[Node]:
    if body.tags:
        return select_nodes(session, PowerSelector(kind="tags", values=body.tags))
    seen: dict[int, Node] = {}
    for ref in body.nodes:
        n = nodes_svc.get_node(session, ref)
        seen.setdefault(n.id, n)
    return list(seen.values())


def _needs_update(session: Session, site: Site, node: Node, targets: list[str]) -> str | None:
    """None when the node is outdated against its baseline (for the targets' components), else why not."""
    ids = {t.rstrip("/").rsplit("/", 1)[-1] for t in targets}
    rows = [r for r in compliance.rows(session, site, node=node.hostname)
            if not ids or r["component"] is None or r["component"] in ids]
    if any(r["status"] in ("outdated", "missing") for r in rows):
        return None
    unknown = next((r for r in rows if r["status"] == "unknown"), None)
    if unknown is not None:
        return f"baseline: cannot judge ({unknown['hint'] or 'unknown'})"
    return "baseline: already compliant"


def create(session: Session, site: Site, body: UpdateIn, *, actor: str, owner: str | None = None) -> FirmwareUpdate:
    """A `queued` job with its node rows (waves numbered from 1) and its queue job (it runs once
    the caller commits; with `owner`, that queue job is born claimed by it), recorded as
    `firmware.update.queued`."""
    find_package(site, body.package)
    chosen = _select(session, body)
    job = FirmwareUpdate(selector={"nodes": body.nodes} if body.nodes else {"tags": body.tags}, package=body.package,
                         baseline=body.baseline, targets=body.targets, batch=body.batch, drain=body.drain,
                         multipart=body.multipart, timeout=body.timeout, poll=body.poll, status="queued",
                         cancel_requested=False, actor=actor)
    session.add(job)
    session.flush()
    job.job_id = queue.enqueue(session, KIND, {"update": job.id}, key=f"{KIND}:{job.id}", actor=actor,
                               owner=owner).id
    todo = 0
    for n in chosen:
        why = "no BMC" if not n.bmc_url else _needs_update(session, site, n, body.targets) if body.baseline else None
        wave = None if why else todo // body.batch + 1
        todo += why is None
        session.add(FirmwareUpdateNode(update_id=job.id, node_id=n.id, hostname=n.hostname, wave=wave,
                                       status="skipped" if why else "pending", drained=False, message=why or ""))
    record(session, actor=actor, kind="firmware.update.queued",
           reason=f"firmware update {job.id}: {body.package} on {todo} of {len(chosen)} node(s)",
           data={"update": job.id, "package": body.package, "selector": job.selector, "targets": body.targets,
                 "batch": body.batch, "baseline": body.baseline, "nodes": todo})
    session.flush()
    return job


def get(session: Session, update_id: int) -> FirmwareUpdate:
    job = session.get(FirmwareUpdate, update_id)
    if job is None:
        raise NotFound(f"no firmware update {update_id}")
    return job


def rows_of(session: Session, update_id: int, offset: int = 0, limit: int | None = None) -> list[FirmwareUpdateNode]:
    """The job's node rows in wave order (skipped ones last), `limit` of them from `offset`."""
    return list(session.scalars(select(FirmwareUpdateNode).where(FirmwareUpdateNode.update_id == update_id)
                                .order_by(FirmwareUpdateNode.wave.is_(None), FirmwareUpdateNode.wave,
                                          FirmwareUpdateNode.id).offset(offset).limit(limit)))


def counts_of(session: Session, update_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each job's number of nodes per node status, in one aggregate query (no node row loaded)."""
    out: dict[int, dict[str, int]] = {i: {} for i in update_ids}
    if update_ids:
        for uid, status, n in session.execute(
                select(FirmwareUpdateNode.update_id, FirmwareUpdateNode.status, func.count())
                .where(FirmwareUpdateNode.update_id.in_(update_ids))
                .group_by(FirmwareUpdateNode.update_id, FirmwareUpdateNode.status)):
            out[uid][status] = n
    return out


def out_of(job: FirmwareUpdate, counts: dict[str, int], rows: list[FirmwareUpdateNode]) -> UpdateOut:
    """The job as `UpdateOut` with the given counts and node rows (all of them, a page, or none)."""
    fields: dict[str, Any] = {k: getattr(job, k) for k in UpdateOut.model_fields if k not in ("counts", "nodes")}
    return UpdateOut(**fields, counts=counts, nodes=[
        UpdateNodeOut(node=r.hostname, wave=r.wave, status=r.status,
                      task=r.task, task_state=r.task_state, percent=r.percent, message=r.message,
                      started_at=r.started_at, finished_at=r.finished_at) for r in rows])


def to_out(session: Session, job: FirmwareUpdate) -> UpdateOut:
    rows = rows_of(session, job.id)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    return out_of(job, counts, rows)


def list_jobs(session: Session, limit: int = 50) -> list[FirmwareUpdate]:
    return list(session.scalars(select(FirmwareUpdate).order_by(FirmwareUpdate.id.desc()).limit(limit)))


def cancel(session: Session, update_id: int, *, actor: str) -> FirmwareUpdate:
    """Cancel the nodes not started yet (`pending`): now, in the database, so no runner starts them;
    nodes already draining or flashing run to their end. A queued job ends `cancelled` at once; a
    running one when its runner sees the request. `Conflict` if the job has ended."""
    job = get(session, update_id)
    if job.status in FINAL:
        raise Conflict(f"firmware update {update_id} has ended ({job.status})")
    now = datetime.now(UTC)
    gone = session.execute(update(FirmwareUpdateNode).where(FirmwareUpdateNode.update_id == update_id,
                                                            FirmwareUpdateNode.status == "pending")
                           .values(status="cancelled", message=f"cancelled by {actor}", finished_at=now)
                           .returning(FirmwareUpdateNode.hostname)).scalars().all()
    job.cancel_requested = True
    if job.status == "queued":
        job.status, job.finished_at = "cancelled", now
    if job.job_id is not None:
        queue.request_cancel(session, job.job_id)  # queued: never claimed; running: its handler is told
    kind = "firmware.update.cancelled" if job.status == "cancelled" else "firmware.update.cancel"
    record(session, actor=actor, kind=kind,
           reason=f"firmware update {update_id}: {len(gone)} node(s) not started cancelled",
           data={"update": update_id, "nodes": sorted(gone), "status": job.status})
    session.flush()
    return job
