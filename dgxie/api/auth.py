"""Bearer-token authentication and role checks for the admin API.

Tokens are looked up through the context's `TokenCache` (dgxie/tokens.py).
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dgxie.api.deps import get_ctx
from dgxie.errors import Forbidden, Unauthorized
from dgxie.tokens import RANK, Principal, Role

_bearer = HTTPBearer(auto_error=False, description="dgxie API token (`dgxie token create`)")


def forget(request: Request, name: str) -> None:
    """Drop a revoked token from this process's cache at once."""
    get_ctx(request).tokens.forget(name)


class RoleCheck:
    """A dependency that authenticates the caller (401) and checks it holds at least `role` (403).
    `role` is also what the OpenAPI document states for the operation (dgxie/api/openapi.py).
    A cached token is checked on the event loop (no thread hop per request); a miss looks it up in
    the thread pool."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(self, request: Request,
                       cred: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        if cred is None or cred.scheme.lower() != "bearer" or not cred.credentials:
            raise Unauthorized("missing bearer token (Authorization: Bearer TOKEN)")
        ctx = get_ctx(request)
        principal = ctx.tokens.cached(cred.credentials)
        if principal is None:
            principal = await run_in_threadpool(ctx.tokens.lookup, ctx.sessions, cred.credentials)
        if RANK[principal.role] < RANK[self.role]:
            raise Forbidden(f"token {principal.name} is {principal.role.value}; this needs {self.role.value}")
        return principal


def require(role: Role) -> RoleCheck:
    return RoleCheck(role)


Viewer = Depends(require(Role.VIEWER))
Operator = Depends(require(Role.OPERATOR))
Admin = Depends(require(Role.ADMIN))
