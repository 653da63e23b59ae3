"""/api/v1/mirrors: list mirrors, start a sync (a background job), follow it, snapshots, rollback."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from dgxie.api.auth import Operator, Viewer
from dgxie.api.deps import SessionDep, SiteDep, get_ctx
from dgxie.mirror import queries, service
from dgxie.mirror.schemas import JobOut, MirrorOut, SnapshotOut
from dgxie.tokens import Principal

router = APIRouter(prefix="/mirrors", tags=["mirrors"])


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    snapshot: str


@router.get("", response_model=list[MirrorOut])
def list_mirrors(s: SessionDep, site: SiteDep, _: Principal = Viewer) -> list[MirrorOut]:
    return queries.list_mirrors(s, site)


@router.get("/{name}", response_model=MirrorOut)
def get_mirror(name: str, s: SessionDep, site: SiteDep, _: Principal = Viewer) -> MirrorOut:
    return queries.get_mirror(s, site, name)


@router.post("/{name}/sync", response_model=JobOut, status_code=202)
def sync(name: str, request: Request, site: SiteDep, who: Principal = Operator) -> JobOut:
    """Queue a sync; follow it at `GET /api/v1/mirrors/{name}/jobs/{id}`. 409 if one is running."""
    return service.start_sync(get_ctx(request).sessions, site, name, trigger=who.actor)


@router.get("/{name}/jobs", response_model=list[JobOut])
def list_jobs(name: str, s: SessionDep, site: SiteDep, _: Principal = Viewer) -> list[JobOut]:
    queries.get_mirror(s, site, name)
    return queries.list_jobs(s, name)


@router.get("/{name}/jobs/{job_id}", response_model=JobOut)
def get_job(name: str, job_id: int, s: SessionDep, _: Principal = Viewer) -> JobOut:
    return queries.get_job(s, name, job_id)


@router.get("/{name}/snapshots", response_model=list[SnapshotOut])
def list_snapshots(name: str, s: SessionDep, site: SiteDep, _: Principal = Viewer) -> list[SnapshotOut]:
    return queries.list_snapshots(s, site, name)


@router.post("/{name}/rollback", response_model=MirrorOut)
def rollback(name: str, body: RollbackIn, s: SessionDep, site: SiteDep, who: Principal = Operator) -> MirrorOut:
    """Serve a kept older snapshot again; recorded as a `mirror.rollback` event by this token."""
    service.rollback(s, site, name, body.snapshot, actor=who.actor)
    return queries.get_mirror(s, site, name)
