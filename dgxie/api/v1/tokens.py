"""/api/v1/tokens: API tokens (admin only, but `GET /tokens/self`). The plaintext is returned once, at creation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from dgxie import tokens
from dgxie.api.auth import Admin, Viewer, forget
from dgxie.api.deps import SessionDep
from dgxie.api.limits import JsonRoute
from dgxie.api.openapi import conflict, example
from dgxie.tokens import Principal, Role

router = APIRouter(prefix="/tokens", tags=["tokens"], route_class=JsonRoute)
TOKEN: dict[str, Any] = {"id": 4, "name": "ci", "role": "operator", "prefix": "dgxie_3f9a1c", "revoked": False,
                         "created_at": "2026-11-30T08:00:00Z", "last_used_at": None}


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "ci", "role": "operator"}]})
    name: str
    role: Role


class TokenCreated(tokens.TokenOut):
    token: str


class Self(BaseModel):
    name: str
    role: Role


@router.get("/self", response_model=Self, responses=example({"name": "dashboard", "role": "viewer"}))
async def whoami(who: Principal = Viewer) -> Self:
    """The calling token's name and role (any role; 401 without a valid token). It reads nothing
    but the token, on the event loop: also the API's trivial route, the baseline of its benches."""
    return Self(name=who.name, role=who.role)


@router.get("", response_model=list[tokens.TokenOut], responses=example([TOKEN]))
def list_tokens(s: SessionDep, _: Principal = Admin) -> list[tokens.TokenOut]:
    """Every token (revoked ones too) by name, role and prefix; never the secret."""
    return [tokens.to_out(t) for t in tokens.list_tokens(s)]


@router.post("", response_model=TokenCreated, status_code=201,
             responses=conflict("the name is taken") | example(TOKEN | {"token": "dgxie_3f9a1c..."}, status=201))
def create_token(body: TokenIn, s: SessionDep, who: Principal = Admin) -> TokenCreated:
    """A new token of a role; `token` (the secret) is in this answer only."""
    tok, plain = tokens.create_token(s, name=body.name, role=body.role.value, actor=who.actor)
    return TokenCreated(**tokens.to_out(tok).model_dump(), token=plain)


@router.delete("/{name}", response_model=tokens.TokenOut, responses=example(TOKEN | {"revoked": True}))
def revoke_token(name: str, request: Request, s: SessionDep, who: Principal = Admin) -> tokens.TokenOut:
    """Revoke a token: refused at once by this process, within 5 s by others."""
    out = tokens.to_out(tokens.revoke_token(s, name, actor=who.actor))
    forget(request, name)
    return out
