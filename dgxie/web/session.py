"""Dashboard sessions: a server-side table keyed by a random id, the id alone in the cookie.

Signing in with an API token makes a session: a random 256-bit id goes to the browser in the
`dgxie_session` cookie (HttpOnly, SameSite=Strict, Path=/, Secure when the request came over
HTTPS); the table keeps, under the id's SHA-256, the API token (in memory only, never on disk,
never in the cookie), a per-session CSRF token and the expiry. Every request re-checks the token
through the API's `TokenCache`, so revoking the token ends its sessions at once. Sign out drops the
row. The table is bounded (`MAX_SESSIONS`, oldest dropped first) and dies with the process: a
restart signs everyone out. docs/security.md says the same.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import Request, Response

from dgxie.crypto import hash_token
from dgxie.errors import Forbidden

COOKIE = "dgxie_session"
TTL_SECONDS = 8 * 3600
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class WebSession:
    token: str
    csrf: str
    expires: float


class SessionTable:
    """The live sessions of this process (thread-safe; bounded; expired rows dropped on use)."""

    def __init__(self, ttl: float = TTL_SECONDS, limit: int = MAX_SESSIONS) -> None:
        self._rows: OrderedDict[str, WebSession] = OrderedDict()
        self._lock = threading.Lock()
        self.ttl, self.limit = ttl, limit

    def create(self, token: str) -> tuple[str, WebSession]:
        """A new session for an (already checked) API token: the cookie value and the row."""
        sid = secrets.token_urlsafe(32)
        row = WebSession(token=token, csrf=secrets.token_urlsafe(32), expires=time.time() + self.ttl)
        with self._lock:
            self._rows[hash_token(sid)] = row
            while len(self._rows) > self.limit:
                self._rows.popitem(last=False)
        return sid, row

    def get(self, sid: str | None) -> WebSession | None:
        if not sid or len(sid) > 100:
            return None
        key = hash_token(sid)
        with self._lock:
            row = self._rows.get(key)
            if row is not None and row.expires < time.time():
                del self._rows[key]
                row = None
        return row

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._rows.pop(hash_token(sid), None)


def _origin(url: str) -> str:
    """`scheme://host[:port]` of a URL (what an `Origin` header holds)."""
    return "/".join(url.split("/", 3)[:3])


def set_cookie(request: Request, response: Response, sid: str, public_url: str) -> None:
    """The session cookie; `Secure` when the browser speaks HTTPS to dgxie or to its TLS proxy
    (the request's scheme, its `Origin`, or an `https://` public URL)."""
    secure = (request.url.scheme == "https" or request.headers.get("origin", "").startswith("https://")
              or public_url.startswith("https://"))
    response.set_cookie(COOKIE, sid, max_age=TTL_SECONDS, path="/", httponly=True, samesite="strict", secure=secure)


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def check_origin(request: Request, public_url: str) -> None:
    """A state-changing request must come from a page of this server: its `Origin` header (or,
    without one, its `Referer`) must be `http(s)://` + the request's `Host` (dgxie itself, or a TLS
    proxy that keeps the Host header) or the origin of the site's public URL. Neither header: 403."""
    host = request.headers.get("host", "")
    own = {f"http://{host}", f"https://{host}", _origin(public_url.rstrip("/"))}
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer", "")
        origin = _origin(referer) if referer else None
    if origin is None or not host or origin not in own:
        raise Forbidden("cross-origin request refused (Origin must be this server)")


def check_csrf(row: WebSession, sent: str | None) -> None:
    """The form's `csrf` field must equal the session's CSRF token (constant-time compare)."""
    if not sent or not hmac.compare_digest(sent.encode(), row.csrf.encode()):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")


MAX_STREAMS = 256


class StreamSlots:
    """At most `limit` dashboard event streams open at once in this process (each polls the events
    table once a second); the next is refused with 503 and its EventSource retries."""

    def __init__(self, limit: int = MAX_STREAMS) -> None:
        self.limit, self.open = limit, 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.open = max(0, self.open - 1)
