"""API tokens: create (shown once), authenticate (by SHA-256), list, revoke.

Roles are ordered: viewer reads; operator also changes nodes; admin also manages tokens,
profiles and images.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.crypto import hash_token, new_token
from dgxie.db import session_scope
from dgxie.errors import Conflict, Invalid, NotFound, Unauthorized
from dgxie.events import record
from dgxie.models import ApiToken
from dgxie.models.types import utcnow
from dgxie.validation import check_name


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    prefix: str
    revoked: bool
    created_at: datetime
    last_used_at: datetime | None


def to_out(t: ApiToken) -> TokenOut:
    return TokenOut(id=t.id, name=t.name, role=t.role, prefix=t.prefix, revoked=t.revoked,
                    created_at=t.created_at, last_used_at=t.last_used_at)


def create_token(session: Session, *, name: str, role: str, actor: str) -> tuple[ApiToken, str]:
    """A new token row and the plaintext token, which is never stored and never shown again."""
    try:
        check_name(name)
        r = Role(role)
    except ValueError as exc:
        raise Invalid(str(exc) if "name" in str(exc) else f"role: {role!r} is not admin, operator or viewer") from None
    if session.scalar(select(ApiToken).where(ApiToken.name == name)) is not None:
        raise Conflict(f"token {name} already exists")
    plain = new_token()
    tok = ApiToken(name=name, role=r.value, token_hash=hash_token(plain), prefix=plain[:12])
    session.add(tok)
    session.flush()
    record(session, actor=actor, kind="token.create", reason=f"token {name} ({r.value}) created",
           data={"token": name, "role": r.value})
    return tok, plain


def authenticate(session: Session, plain: str) -> ApiToken:
    """The live token for a bearer string, or Unauthorized."""
    tok = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plain)))
    if tok is None or tok.revoked:
        raise Unauthorized("invalid or revoked token")
    now = utcnow()
    if tok.last_used_at is None or (now - tok.last_used_at).total_seconds() > 60:
        tok.last_used_at = now  # coarse, so reads do not write on every request
    return tok


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.name)))


def revoke_token(session: Session, name: str, *, actor: str) -> ApiToken:
    tok = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if tok is None:
        raise NotFound(f"no token {name!r}")
    if not tok.revoked:
        tok.revoked = True
        record(session, actor=actor, kind="token.revoke", reason=f"token {name} revoked", data={"token": name})
    return tok


@dataclass(frozen=True)
class Principal:
    """Who an authenticated API request is: the token's name and role."""

    name: str
    role: Role

    @property
    def actor(self) -> str:
        return f"token:{self.name}"


class TokenCache:
    """Authenticated tokens, kept `ttl` seconds per process (keyed by the token's SHA-256, never
    the token), so a request does not hit the database each time; a token revoked in another
    process stops working within `ttl` seconds, one revoked through this process at once.
    `generation` counts the revocations through this process (caches built on a token check,
    like the dashboard's sessions, drop what they cached before it changed)."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self.generation = 0
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._guard = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def cached(self, plain: str) -> Principal | None:
        """The principal if this token was checked less than `ttl` seconds ago (no I/O: the API
        calls it on the event loop and goes to a worker thread only on a miss)."""
        hit = self._entries.get(hash_token(plain))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def lookup(self, sessions: sessionmaker[Session], plain: str) -> Principal:
        """The principal for a bearer string, or Unauthorized. Concurrent misses for one token
        make one database lookup (the others wait for it): when a busy token's entry expires,
        hundreds of requests do not all query, and all write `last_used_at`, at once."""
        key = hash_token(plain)
        hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        with self._guard:
            loading = self._loading.setdefault(key, threading.Lock())
        try:
            with loading:
                hit = self._entries.get(key)
                if hit is not None and hit[0] > time.monotonic():
                    return hit[1]
                with session_scope(sessions) as s:
                    tok = authenticate(s, plain)
                    principal = Principal(name=tok.name, role=Role(tok.role))
                if len(self._entries) > self.MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = (time.monotonic() + self.ttl, principal)
                return principal
        finally:
            with self._guard:
                self._loading.pop(key, None)

    def forget(self, name: str) -> None:
        """Drop a revoked token at once."""
        self.generation += 1
        for key, (_, p) in list(self._entries.items()):
            if p.name == name:
                del self._entries[key]
