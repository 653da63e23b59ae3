"""/api/v1/inventory: the Ansible inventory (DeepOps layout) and the Slurm node lines (viewer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from dgxie.api.auth import Viewer
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.handoff import service
from dgxie.tokens import Principal

router = APIRouter(prefix="/inventory", tags=["inventory"])


class SlurmOut(BaseModel):
    slurm_conf: str
    gres_conf: str
    warnings: list[str]


@router.get("/ansible")
def ansible(s: SessionDep, site: SiteDep, _: Principal = Viewer, layout: str = "head",
            all: bool = False) -> dict[str, Any]:
    """The same JSON as `dgxie inventory ansible --list`."""
    return service.ansible_list(s, site, layout=layout, all_states=all)


@router.get("/ansible/hosts/{hostname}")
def ansible_host(hostname: str, s: SessionDep, site: SiteDep, _: Principal = Viewer) -> dict[str, Any]:
    """The same JSON as `dgxie inventory ansible --host H` ({} for an unknown host)."""
    return service.ansible_host(s, site, hostname)


@router.get("/slurm", response_model=SlurmOut)
def slurm(s: SessionDep, site: SiteDep, _: Principal = Viewer, partition_by: str = "role",
          memory_reserve_percent: float = 2.0, all: bool = False) -> SlurmOut:
    cfg = service.slurm_config(s, site, by=partition_by, reserve_percent=memory_reserve_percent, all_states=all)
    return SlurmOut(slurm_conf=cfg.slurm_conf, gres_conf=cfg.gres_conf, warnings=cfg.warnings)
