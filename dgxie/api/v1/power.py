"""/api/v1/nodes/{ref}/power and /bootdev: power and one-time boot through the node's BMC."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from dgxie.api.auth import Operator, Viewer
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.bmc.base import BootDevice, PowerAction
from dgxie.nodes import power, service
from dgxie.nodes.schemas import BootOut, PowerOut, PowerStatusOut
from dgxie.tokens import Principal

router = APIRouter(prefix="/nodes", tags=["power"])


class PowerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: PowerAction


class BootIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: BootDevice


@router.get("/{ref}/power", response_model=PowerStatusOut)
def power_status(ref: str, s: SessionDep, site: SiteDep, _: Principal = Viewer) -> PowerStatusOut:
    return power.power_status(site, service.get_node(s, ref))


@router.post("/{ref}/power", response_model=PowerOut)
def power_action(ref: str, body: PowerIn, s: SessionDep, site: SiteDep, who: Principal = Operator) -> PowerOut:
    return power.power(s, site, service.get_node(s, ref), body.action, actor=who.actor)


@router.post("/{ref}/bootdev", response_model=BootOut)
def boot_device(ref: str, body: BootIn, s: SessionDep, site: SiteDep, who: Principal = Operator) -> BootOut:
    return power.boot_once(s, site, service.get_node(s, ref), body.device, actor=who.actor)
