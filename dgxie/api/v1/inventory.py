"""/api/v1/inventory: the Ansible inventory (DeepOps layout) and the Slurm node lines (viewer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from dgxie.api import readcache
from dgxie.api.auth import Viewer
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.api.limits import JsonRoute
from dgxie.api.openapi import example
from dgxie.handoff import service
from dgxie.handoff.ansible import Layout
from dgxie.handoff.slurm import PartitionBy
from dgxie.tokens import Principal

router = APIRouter(prefix="/inventory", tags=["inventory"], route_class=JsonRoute)
HOST: dict[str, Any] = {"ansible_host": "10.0.0.21", "dgxie_role": "slurmd", "dgxie_state": "ready",
                        "dgxie_tags": ["rack1"], "dgxie_gpu_count": 8, "admin_user": "ops"}
INVENTORY: dict[str, Any] = {"_meta": {"hostvars": {"gpu01": HOST}},
                             "all": {"hosts": ["gpu01"], "children": ["ungrouped", "slurm-node"], "vars": {}},
                             "slurm-node": {"hosts": ["gpu01"]}}


class SlurmOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "slurm_conf": "NodeName=gpu01 CPUs=128 RealMemory=1003520 Gres=gpu:8 State=UNKNOWN\n"
                      "PartitionName=slurmd Nodes=gpu01 Default=YES State=UP\n",
        "gres_conf": "NodeName=gpu01 Name=gpu File=/dev/nvidia[0-7]\n", "warnings": []}]})
    slurm_conf: str
    gres_conf: str
    warnings: list[str]


@router.get("/ansible", responses=example(INVENTORY))
def ansible(request: Request, s: SessionDep, site: SiteDep, _: Principal = Viewer, layout: Layout = "head",
            all: bool = False) -> Response:
    """The same JSON as `dgxie inventory ansible --list`: groups and `_meta.hostvars` of the installed,
    bootstrapping and ready nodes (every node with `all`). Kept between changes and with an
    `ETag` (`api.readcache`): what `scripts/dgxie-inventory` asks when it is given an API URL."""
    return readcache.of(request).answer(request, s, ("ansible", layout, all),
                                        lambda: service.ansible_list(s, site, layout=layout, all_states=all))


@router.get("/ansible/hosts/{hostname}", responses=example(HOST))
def ansible_host(hostname: str, s: SessionDep, site: SiteDep, _: Principal = Viewer) -> dict[str, Any]:
    """The same JSON as `dgxie inventory ansible --host H` ({} for an unknown host)."""
    return service.ansible_host(s, site, hostname)


@router.get("/slurm", response_model=SlurmOut)
def slurm(s: SessionDep, site: SiteDep, _: Principal = Viewer, partition_by: PartitionBy = "role",
          memory_reserve_percent: float = Query(2.0, ge=0, lt=100), all: bool = False) -> SlurmOut:
    """slurm.conf node and partition lines and gres.conf from the nodes' hardware facts."""
    cfg = service.slurm_config(s, site, by=partition_by, reserve_percent=memory_reserve_percent, all_states=all)
    return SlurmOut(slurm_conf=cfg.slurm_conf, gres_conf=cfg.gres_conf, warnings=cfg.warnings)
