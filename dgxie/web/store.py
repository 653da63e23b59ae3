"""Dashboard sessions in the database (`web_sessions`), shared by every dgxie instance on it.

A browser signed in through one API instance is signed in on all of them (replicas behind one
Service, no session affinity), and a restart signs nobody out. What is stored, per session: the
SHA-256 of the random 256-bit cookie value (never the value), the id of the API token that signed
in (never the token), created, expires (`TTL_SECONDS` after sign-in) and last seen (written at
most every `TOUCH_SECONDS`). The CSRF token is not stored: it is HMAC(site key, cookie value)
(`SecretBox.derive`), the same on every instance that shares the site key.

Every check re-reads the token's row (joined in the same query), so revoking the token ends its
sessions; each process keeps a checked session `CACHE_SECONDS` (no query per page load), dropped
at once when this process signs the session out or revokes any token (`TokenCache.generation`).
Another instance's sign-out or revocation is seen within `CACHE_SECONDS`. Each token keeps at
most `MAX_PER_TOKEN` sessions (the oldest dropped at sign-in); expired rows are deleted at each
sign-in and when met.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.crypto import SecretBox, hash_token
from dgxie.db import session_scope
from dgxie.models import ApiToken, WebSessionRow
from dgxie.models.types import utcnow
from dgxie.tokens import Principal, Role, TokenCache, authenticate

TTL_SECONDS = 8 * 3600
MAX_PER_TOKEN = 20
CACHE_SECONDS = 2.0
TOUCH_SECONDS = 60
MAX_CACHED = 10_000
MAX_COOKIE = 100  # longer cookie values are not ours (ours are 43 characters)


@dataclass(frozen=True)
class WebSession:
    """A live session: its CSRF token (for the pages' forms), expiry (Unix time) and principal."""

    csrf: str
    expires: float
    principal: Principal


def csrf_for(box: SecretBox, sid: str) -> str:
    return box.derive("dashboard csrf", sid)


def _key(sid: str | None) -> str | None:
    return hash_token(sid) if sid and len(sid) <= MAX_COOKIE else None


class SessionStore:
    """The sessions table plus this process's short cache of checked sessions (thread-safe)."""

    def __init__(self, ttl: float = TTL_SECONDS, per_token: int = MAX_PER_TOKEN,
                 cache_seconds: float = CACHE_SECONDS, touch_every: float = TOUCH_SECONDS) -> None:
        self.ttl, self.per_token, self.cache_seconds, self.touch_every = ttl, per_token, cache_seconds, touch_every
        self._cache: dict[str, tuple[float, int, WebSession]] = {}
        self._lock = threading.Lock()

    def cached(self, sid: str | None, tokens: TokenCache) -> WebSession | None:
        """The session if this process checked it less than `cache_seconds` ago and revoked no
        token since (no I/O: called on the event loop)."""
        key = _key(sid)
        hit = self._cache.get(key) if key else None
        if hit is None or hit[0] <= time.monotonic() or hit[1] != tokens.generation or hit[2].expires <= time.time():
            return None
        return hit[2]

    def create(self, sessions: sessionmaker[Session], box: SecretBox, tokens: TokenCache,
               token: str) -> tuple[str, WebSession]:
        """Check the API token (Unauthorized if unknown or revoked) and store a new session for
        it: the cookie value and the session."""
        sid, generation, now = secrets.token_urlsafe(32), tokens.generation, utcnow()
        expires = now + timedelta(seconds=self.ttl)
        with session_scope(sessions) as s:
            tok = authenticate(s, token)
            s.execute(delete(WebSessionRow).where(WebSessionRow.expires_at <= now))
            s.add(WebSessionRow(id=hash_token(sid), token_id=tok.id, created_at=now, expires_at=expires,
                                last_seen_at=now))
            s.flush()
            older = s.scalars(select(WebSessionRow.id).where(WebSessionRow.token_id == tok.id)
                              .order_by(WebSessionRow.created_at.desc(), WebSessionRow.id)
                              .offset(self.per_token)).all()
            if older:
                s.execute(delete(WebSessionRow).where(WebSessionRow.id.in_(older)))
            row = WebSession(csrf_for(box, sid), expires.timestamp(), Principal(tok.name, Role(tok.role)))
        self._remember(hash_token(sid), generation, row)
        return sid, row

    def load(self, sessions: sessionmaker[Session], box: SecretBox, tokens: TokenCache,
             sid: str | None) -> WebSession | None:
        """The session from the database (one query), or None: unknown, signed out, expired
        (deleted) or its token revoked (deleted)."""
        key = _key(sid)
        if key is None or sid is None:
            return None
        generation, now = tokens.generation, utcnow()
        with session_scope(sessions) as s:
            found = s.execute(select(WebSessionRow, ApiToken).join(ApiToken, ApiToken.id == WebSessionRow.token_id)
                              .where(WebSessionRow.id == key)).first()
            if found is None:
                self._forget(key)
                return None
            stored, tok = found
            if stored.expires_at <= now or tok.revoked:
                s.delete(stored)
                self._forget(key)
                return None
            if (now - stored.last_seen_at).total_seconds() >= self.touch_every:
                stored.last_seen_at = now
            if tok.last_used_at is None or (now - tok.last_used_at).total_seconds() > 60:
                tok.last_used_at = now  # as the API's bearer check does
            row = WebSession(csrf_for(box, sid), stored.expires_at.timestamp(), Principal(tok.name, Role(tok.role)))
        self._remember(key, generation, row)
        return row

    def drop(self, sessions: sessionmaker[Session], sid: str | None) -> None:
        """Sign out: delete the session (every instance refuses it within `cache_seconds`, this
        one at once)."""
        key = _key(sid)
        if key is None:
            return
        self._forget(key)
        with session_scope(sessions) as s:
            s.execute(delete(WebSessionRow).where(WebSessionRow.id == key))

    def _remember(self, key: str, generation: int, row: WebSession) -> None:
        if self.cache_seconds <= 0:
            return
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + self.cache_seconds, generation, row)

    def _forget(self, key: str) -> None:
        with self._lock:
            self._cache.pop(key, None)
