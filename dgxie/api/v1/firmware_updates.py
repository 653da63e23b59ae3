"""/api/v1/firmware/updates: firmware update jobs (`dgxie.firmware.update_jobs`), run in the
background by an instance's job worker (the `firmware.update` kind of the job queue), with per-node
progress (Redfish Task states)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query

from dgxie.api.auth import Operator, Viewer
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.api.limits import JsonRoute
from dgxie.api.openapi import conflict, missing
from dgxie.firmware import update_jobs
from dgxie.firmware.update_jobs import UpdateIn, UpdateOut
from dgxie.tokens import Principal

router = APIRouter(prefix="/firmware/updates", tags=["firmware"], route_class=JsonRoute)
MAX_ID = 2**31 - 1


@router.post("", response_model=UpdateOut, status_code=202,
             responses=missing("a node named in `nodes` does not exist"))
def create_update(body: UpdateIn, s: SessionDep, site: SiteDep, who: Principal = Operator) -> UpdateOut:
    """Queue a firmware update of the named nodes (`nodes`) or of the nodes with every tag
    (`tags`) with a staged package, `batch` nodes at a time, stopping after a wave with a failure;
    with `baseline`, only the nodes outdated against their baseline are updated. Ready nodes are
    drained from their scheduler first when `drain` (their role's hook), resumed after. Nodes
    without a BMC are skipped. Runs in the background: follow it at
    `GET /api/v1/firmware/updates/{id}`. A package that is not staged, a selector matching no node
    or both/neither of `nodes` and `tags` is a 422; an unknown node a 404."""
    return update_jobs.to_out(s, update_jobs.create(s, site, body, actor=who.actor))


@router.get("", response_model=list[UpdateOut])
def list_updates(s: SessionDep, _: Principal = Viewer, limit: int = Query(20, ge=1, le=200)) -> list[UpdateOut]:
    """The latest firmware update jobs, newest first, each with its nodes' progress."""
    return [update_jobs.to_out(s, j) for j in update_jobs.list_jobs(s, limit)]


@router.get("/{update_id}", response_model=UpdateOut)
def get_update(s: SessionDep, _: Principal = Viewer, update_id: int = Path(ge=1, le=MAX_ID)) -> UpdateOut:
    """One firmware update job: its status and every node's progress (wave, status, Redfish Task
    URI, TaskState and PercentComplete, last message)."""
    return update_jobs.to_out(s, update_jobs.get(s, update_id))


@router.delete("/{update_id}", response_model=UpdateOut, responses=conflict("the update has ended"))
def cancel_update(s: SessionDep, who: Principal = Operator, update_id: int = Path(ge=1, le=MAX_ID)) -> UpdateOut:
    """Cancel the nodes of the update that have not started (they become `cancelled`); nodes
    already draining or flashing run to their end, then the job ends `cancelled`. A queued job is
    cancelled at once. 409 when the job has already ended."""
    return update_jobs.to_out(s, update_jobs.cancel(s, update_id, actor=who.actor))
