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


def set_cookie(request: Request, response: Response, sid: str) -> None:
    response.set_cookie(COOKIE, sid, max_age=TTL_SECONDS, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def check_origin(request: Request) -> None:
    """A state-changing request must come from a page of this origin: the `Origin` header (or,
    without it, `Referer`) must name this server; a request with neither is refused too."""
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer", "")
        origin = "/".join(referer.split("/", 3)[:3]) if referer else None
    if origin != own:
        raise Forbidden("cross-origin request refused (Origin must be this server)")


def check_csrf(row: WebSession, sent: str | None) -> None:
    """The form's `csrf` field must equal the session's CSRF token (constant-time compare)."""
    if not sent or not hmac.compare_digest(sent.encode(), row.csrf.encode()):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")
