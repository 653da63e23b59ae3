"""/api/v1/secrets: brokered secrets (admin). Names only ever come back, never values."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from dgxie.api.auth import Admin
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.api.limits import JsonRoute
from dgxie.api.openapi import example
from dgxie.handoff import secrets
from dgxie.handoff.secrets import SecretOut
from dgxie.tokens import Principal

router = APIRouter(prefix="/secrets", tags=["secrets"], route_class=JsonRoute)
SECRET: dict[str, Any] = {"name": "munge-key", "roles": ["slurmd", "slurm-controller"],
                          "created_at": "2026-11-30T08:00:00Z", "updated_at": "2026-11-30T08:00:00Z"}


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"value": "c2VjcmV0", "roles": ["slurmd", "slurm-controller"]}]})
    value: SecretStr
    roles: list[str] = Field(default=[], max_length=64)


@router.get("", response_model=list[SecretOut], responses=example([SECRET]))
def list_secrets(s: SessionDep, _: Principal = Admin) -> list[SecretOut]:
    """Every secret's name and the roles it is brokered to; never a value."""
    return [secrets.to_out(x) for x in secrets.list_secrets(s)]


@router.put("/{name}", response_model=SecretOut, responses=example(SECRET))
def set_secret(name: str, body: SecretIn, s: SessionDep, site: SiteDep, who: Principal = Admin) -> SecretOut:
    """Create or replace a secret (sealed at rest) and the roles whose nodes receive it."""
    return secrets.to_out(secrets.set_secret(s, site, name, body.value.get_secret_value(), roles=body.roles,
                                             actor=who.actor))


@router.delete("/{name}", status_code=204)
def delete_secret(name: str, s: SessionDep, who: Principal = Admin) -> Response:
    """Delete a secret."""
    secrets.delete_secret(s, name, actor=who.actor)
    return Response(status_code=204)
