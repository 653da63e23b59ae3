"""/api/v1/tokens: API tokens (admin only). The plaintext is returned once, at creation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from dgxie import tokens
from dgxie.api.auth import Admin, forget
from dgxie.api.deps import SessionDep
from dgxie.tokens import Principal

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    role: str


class TokenCreated(tokens.TokenOut):
    token: str


@router.get("", response_model=list[tokens.TokenOut])
def list_tokens(s: SessionDep, _: Principal = Admin) -> list[tokens.TokenOut]:
    return [tokens.to_out(t) for t in tokens.list_tokens(s)]


@router.post("", response_model=TokenCreated, status_code=201)
def create_token(body: TokenIn, s: SessionDep, who: Principal = Admin) -> TokenCreated:
    tok, plain = tokens.create_token(s, name=body.name, role=body.role, actor=who.actor)
    return TokenCreated(**tokens.to_out(tok).model_dump(), token=plain)


@router.delete("/{name}", response_model=tokens.TokenOut)
def revoke_token(name: str, request: Request, s: SessionDep, who: Principal = Admin) -> tokens.TokenOut:
    out = tokens.to_out(tokens.revoke_token(s, name, actor=who.actor))
    forget(request, name)
    return out
