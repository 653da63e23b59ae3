"""Bearer-token authentication and role checks for the admin API."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dgxie.api.deps import get_ctx
from dgxie.crypto import hash_token
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


CACHE_SECONDS = 5.0


def _lookup(request: Request, plain: str) -> Principal:
    """Authenticate against the database at most once per CACHE_SECONDS per token, so a revoked
    token stops working within that time in every process."""
    ctx = get_ctx(request)
    cache: dict[str, tuple[float, Principal]] = ctx.extras.setdefault("token_cache", {})
    key = hash_token(plain)
    hit = cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    with session_scope(ctx.sessions) as s:
        tok = authenticate(s, plain)
        principal = Principal(name=tok.name, role=Role(tok.role))
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (now + CACHE_SECONDS, principal)
    return principal


def forget(request: Request, name: str) -> None:
    """Drop a revoked token from this process's cache at once."""
    cache: dict[str, tuple[float, Principal]] = get_ctx(request).extras.get("token_cache", {})
    for key, (_, p) in list(cache.items()):
        if p.name == name:
            del cache[key]


def require(role: Role) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks it holds at least `role`."""

    def dep(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        if cred is None or cred.scheme.lower() != "bearer" or not cred.credentials:
            raise Unauthorized("missing bearer token (Authorization: Bearer TOKEN)")
        principal = _lookup(request, cred.credentials)
        if RANK[principal.role] < RANK[role]:
            raise Forbidden(f"token {principal.name} is {principal.role.value}; this needs {role.value}")
        return principal

    return dep


Viewer = Depends(require(Role.VIEWER))
Operator = Depends(require(Role.OPERATOR))
Admin = Depends(require(Role.ADMIN))
