"""/api/v1/mirrors: list mirrors, start a sync (a background job), follow it, snapshots, rollback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict

from dgxie.api.auth import Operator, Viewer
from dgxie.api.deps import SessionDep, SiteDep, get_ctx
from dgxie.api.limits import MAX_INT, JsonRoute
from dgxie.api.openapi import conflict, example
from dgxie.mirror import queries, service
from dgxie.mirror.schemas import JobOut, MirrorOut, SnapshotOut
from dgxie.tokens import Principal

router = APIRouter(prefix="/mirrors", tags=["mirrors"], route_class=JsonRoute)


_T = "2026-11-30T08:00:00Z"
JOB: dict[str, Any] = {
    "id": 12, "mirror": "ubuntu", "kind": "apt", "status": "running", "trigger": "ci", "phase": "fetch",
    "files_total": 5000, "files_done": 1200, "bytes_total": 8000000000, "bytes_done": 2000000000,
    "files_fetched": 1200, "bytes_fetched": 2000000000, "snapshot": None, "error": "", "created_at": _T,
    "started_at": _T, "finished_at": None, "rate_bytes_per_second": 52428800.0}
MIRROR: dict[str, Any] = {
    "name": "ubuntu", "kind": "apt", "configured": True, "upstream": "http://archive.ubuntu.com/ubuntu",
    "url": "http://10.0.0.1:8080/mirror/apt/ubuntu", "current_snapshot": "20261130T080000Z", "files": 5000,
    "bytes": 8000000000, "last_success_at": _T, "last_failure_at": None, "failures": 0, "last_error": "",
    "interval": 86400.0, "keep_snapshots": 3, "job": JOB}
SNAPSHOT: dict[str, Any] = {"snapshot": "20261130T080000Z", "created_at": _T, "files": 5000, "bytes": 8000000000,
                            "source": "sync", "current": True, "meta": {}}
SYNCING = conflict("the mirror is syncing")


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"snapshot": "20261129T080000Z"}]})
    snapshot: str


@router.get("", response_model=list[MirrorOut], responses=example([MIRROR]))
def list_mirrors(s: SessionDep, site: SiteDep, _: Principal = Viewer) -> list[MirrorOut]:
    """Every mirror with its published snapshot, counts, last success and failures, latest job."""
    return queries.list_mirrors(s, site)


@router.get("/{name}", response_model=MirrorOut, responses=example(MIRROR))
def get_mirror(name: str, s: SessionDep, site: SiteDep, _: Principal = Viewer) -> MirrorOut:
    """One mirror."""
    return queries.get_mirror(s, site, name)


@router.post("/{name}/sync", response_model=JobOut, status_code=202,
             responses=SYNCING | example(JOB | {"status": "queued", "phase": "", "started_at": None}, status=202))
def sync(name: str, request: Request, site: SiteDep, who: Principal = Operator) -> JobOut:
    """Queue a sync; follow it at `GET /api/v1/mirrors/{name}/jobs/{id}`. 409 if one is running."""
    return service.start_sync(get_ctx(request).sessions, site, name, trigger=who.actor)


@router.get("/{name}/jobs", response_model=list[JobOut], responses=example([JOB]))
def list_jobs(name: str, s: SessionDep, site: SiteDep, _: Principal = Viewer) -> list[JobOut]:
    """The mirror's latest 20 sync jobs, newest first."""
    queries.get_mirror(s, site, name)
    return queries.list_jobs(s, name)


@router.get("/{name}/jobs/{job_id}", response_model=JobOut, responses=example(JOB))
def get_job(name: str, s: SessionDep, _: Principal = Viewer,
            job_id: int = Path(ge=1, le=MAX_INT)) -> JobOut:
    """One job: status, phase, files and bytes total/done/fetched, rate, error."""
    return queries.get_job(s, name, job_id)


@router.get("/{name}/snapshots", response_model=list[SnapshotOut], responses=example([SNAPSHOT]))
def list_snapshots(name: str, s: SessionDep, site: SiteDep, _: Principal = Viewer) -> list[SnapshotOut]:
    """The kept snapshots; `current` is the one served."""
    return queries.list_snapshots(s, site, name)


@router.post("/{name}/rollback", response_model=MirrorOut, responses=SYNCING | example(MIRROR))
def rollback(name: str, body: RollbackIn, s: SessionDep, site: SiteDep, who: Principal = Operator) -> MirrorOut:
    """Serve a kept older snapshot again; recorded as a `mirror.rollback` event by this token."""
    service.rollback(s, site, name, body.snapshot, actor=who.actor)
    return queries.get_mirror(s, site, name)
