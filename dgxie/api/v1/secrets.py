"""/api/v1/secrets: brokered secrets (admin). Names only ever come back, never values."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, SecretStr

from dgxie.api.auth import Admin
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.handoff import secrets
from dgxie.handoff.secrets import SecretOut
from dgxie.tokens import Principal

router = APIRouter(prefix="/secrets", tags=["secrets"])


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: SecretStr
    roles: list[str] = []


@router.get("", response_model=list[SecretOut])
def list_secrets(s: SessionDep, _: Principal = Admin) -> list[SecretOut]:
    return [secrets.to_out(x) for x in secrets.list_secrets(s)]


@router.put("/{name}", response_model=SecretOut)
def set_secret(name: str, body: SecretIn, s: SessionDep, site: SiteDep, who: Principal = Admin) -> SecretOut:
    return secrets.to_out(secrets.set_secret(s, site, name, body.value.get_secret_value(), roles=body.roles,
                                             actor=who.actor))


@router.delete("/{name}", status_code=204)
def delete_secret(name: str, s: SessionDep, who: Principal = Admin) -> Response:
    secrets.delete_secret(s, name, actor=who.actor)
    return Response(status_code=204)
