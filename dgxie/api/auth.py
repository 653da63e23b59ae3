"""Bearer-token authentication and role checks for the admin API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dgxie.api.deps import get_ctx
from dgxie.db import session_scope
from dgxie.errors import Forbidden, Unauthorized
from dgxie.tokens import RANK, Role, authenticate

_bearer = HTTPBearer(auto_error=False, description="dgxie API token (`dgxie token create`)")


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    @property
    def actor(self) -> str:
        return f"token:{self.name}"


def require(role: Role) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks it holds at least `role`."""

    def dep(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        if cred is None or cred.scheme.lower() != "bearer" or not cred.credentials:
            raise Unauthorized("missing bearer token (Authorization: Bearer TOKEN)")
        with session_scope(get_ctx(request).sessions) as s:
            tok = authenticate(s, cred.credentials)
            principal = Principal(name=tok.name, role=Role(tok.role))
        if RANK[principal.role] < RANK[role]:
            raise Forbidden(f"token {principal.name} is {principal.role.value}; this needs {role.value}")
        return principal

    return dep


Viewer = Depends(require(Role.VIEWER))
Operator = Depends(require(Role.OPERATOR))
Admin = Depends(require(Role.ADMIN))
