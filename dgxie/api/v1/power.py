"""/api/v1/nodes/{ref}/power and /bootdev: power and one-time boot through the node's BMC; and
/api/v1/power: bulk power in waves (a `power.bulk` job on the site's job queue, `dgxie.nodes.power_jobs`)."""

from __future__ import annotations

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from dgxie.api.auth import Operator, Viewer
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.api.limits import JsonRoute
from dgxie.api.openapi import Responses, conflict, missing
from dgxie.bmc.base import BootDevice, PowerAction
from dgxie.errors import Conflict
from dgxie.jobs import queue
from dgxie.nodes import power, power_jobs, power_waves, service
from dgxie.nodes.power_waves import MAX_BATCH, MAX_INTERVAL, PowerJobOut, PowerSelector
from dgxie.nodes.schemas import BootOut, PowerOut, PowerStatusOut
from dgxie.tokens import Principal

router = APIRouter(prefix="/nodes", tags=["power"], route_class=JsonRoute)
bulk_router = APIRouter(prefix="/power", tags=["power"], route_class=JsonRoute)


NO_BMC = conflict("the node has no BMC")
BMC_DOWN: Responses = {503: {"description": "The BMC did not answer or refused (the error is recorded as an event), "
                                 "or the server is saturated: retry after `Retry-After` seconds."}}


class PowerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"action": "cycle"}]})
    action: PowerAction


class BootIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"device": "pxe"}]})
    device: BootDevice


@router.get("/{ref}/power", response_model=PowerStatusOut, responses=NO_BMC | BMC_DOWN)
def power_status(ref: str, s: SessionDep, site: SiteDep, _: Principal = Viewer) -> PowerStatusOut:
    """The power state read from the node's BMC now."""
    return power.power_status(site, service.get_node(s, ref))


@router.post("/{ref}/power", response_model=PowerOut, responses=NO_BMC | BMC_DOWN)
def power_action(ref: str, body: PowerIn, s: SessionDep, site: SiteDep, who: Principal = Operator) -> PowerOut:
    """Power the node on, off or cycle it through its BMC; recorded as an event."""
    return power.power(s, site, service.get_node(s, ref), body.action, actor=who.actor)


@router.post("/{ref}/bootdev", response_model=BootOut, responses=NO_BMC | BMC_DOWN)
def boot_device(ref: str, body: BootIn, s: SessionDep, site: SiteDep, who: Principal = Operator) -> BootOut:
    """Set the device of the next boot only (PXE or disk) through the BMC."""
    return power.boot_once(s, site, service.get_node(s, ref), body.device, actor=who.actor)


class BulkPowerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"action": "on", "selector": {"kind": "tags", "values": ["rack7"]}, "batch": 20, "interval": 10}]})
    action: PowerAction
    selector: PowerSelector
    batch: int = Field(20, ge=1, le=MAX_BATCH)
    interval: float = Field(10.0, ge=0, le=MAX_INTERVAL)


RUNNING = conflict("another bulk power job is queued or running (on any instance)")


@bulk_router.post("", response_model=PowerJobOut, status_code=202,
                  responses=RUNNING | missing("a node named in a `nodes` selector does not exist"))
def bulk_power(body: BulkPowerIn, s: SessionDep, who: Principal = Operator) -> PowerJobOut:
    """Power the selected nodes in waves of `batch` through their BMCs, a wave every `interval`
    seconds (or when the previous wave's BMC calls have returned, if later); nodes without a BMC
    are skipped. Runs in the background as a `power.bulk` job on the site's job queue (whichever
    instance takes it; another one resumes it if that one dies): follow it at
    `GET /api/v1/power/{id}`. A selector that matches no node is a 422, an unknown node in a
    `nodes` selector a 404; a second job while one is queued or running (on any instance) is a
    409. Each node's action is also a `node.power` event."""
    job = power_waves.plan(s, body.selector, body.action, body.batch, body.interval)
    if (running := power_jobs.busy(s)) is not None:
        raise running
    try:
        row = queue.enqueue(s, power_jobs.KIND, power_jobs.payload(job), key=power_jobs.KIND, actor=who.actor)
    except Conflict:  # another instance queued one in the meantime
        raise power_jobs.busy(s) or Conflict("another bulk power job is still running") from None
    return power_jobs.to_out(row)


@bulk_router.get("", response_model=list[PowerJobOut])
def bulk_jobs(s: SessionDep, _: Principal = Viewer) -> list[PowerJobOut]:
    """The newest 50 bulk power jobs of the site (every instance's), newest first."""
    return power_jobs.list_jobs(s)


@bulk_router.get("/{job_id}", response_model=PowerJobOut)
def bulk_job(s: SessionDep, _: Principal = Viewer, job_id: int = Path(ge=1, le=power_waves.MAX_JOB_ID)) -> PowerJobOut:
    """One bulk power job: its status, waves started, and every node's outcome so far."""
    return power_jobs.get(s, job_id)


@bulk_router.delete("/{job_id}", response_model=PowerJobOut, responses=conflict("the job has ended"))
def cancel_bulk_job(s: SessionDep, who: Principal = Operator,
                    job_id: int = Path(ge=1, le=power_waves.MAX_JOB_ID)) -> PowerJobOut:
    """Cancel a bulk power job: a queued one at once; a running one stops before its next wave
    (the wave in flight runs to its end; the nodes not reached stay `pending`) and ends
    `cancelled`. 409 when the job has already ended."""
    row = power_jobs.cancelling(s, job_id, actor=who.actor)
    queue.request_cancel(s, job_id)
    s.flush()
    return power_jobs.to_out(row)
