"""/api/v1/nodes/{ref}/power and /bootdev: power and one-time boot through the node's BMC."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from dgxie.api.auth import Operator, Viewer
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.api.limits import JsonRoute
from dgxie.api.openapi import Responses, conflict
from dgxie.bmc.base import BootDevice, PowerAction
from dgxie.nodes import power, service
from dgxie.nodes.schemas import BootOut, PowerOut, PowerStatusOut
from dgxie.tokens import Principal

router = APIRouter(prefix="/nodes", tags=["power"], route_class=JsonRoute)


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
