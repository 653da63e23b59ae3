"""Bearer-token authentication and role checks for the admin API.

Tokens are looked up through the context's `TokenCache` (dgxie/tokens.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller and checks it holds at least `role`."""

    async def dep(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        if cred is None or cred.scheme.lower() != "bearer" or not cred.credentials:
            raise Unauthorized("missing bearer token (Authorization: Bearer TOKEN)")
        ctx = get_ctx(request)
        principal = ctx.tokens.cached(cred.credentials)  # on the event loop: no thread hop per request
        if principal is None:
            principal = await run_in_threadpool(ctx.tokens.lookup, ctx.sessions, cred.credentials)
        if RANK[principal.role] < RANK[role]:
            raise Forbidden(f"token {principal.name} is {principal.role.value}; this needs {role.value}")
        return principal

    return dep


Viewer = Depends(require(Role.VIEWER))
Operator = Depends(require(Role.OPERATOR))
Admin = Depends(require(Role.ADMIN))
