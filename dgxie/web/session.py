"""Dashboard session cookies and request checks: the cookie, the Origin check, the CSRF check.

Signing in with an API token makes a session (stored by `dgxie.web.store.SessionStore` in the
database, shared by every instance): a random 256-bit value goes to the browser in the
`dgxie_session` cookie (HttpOnly, SameSite=Strict, Path=/, Secure when the request came over
HTTPS); the server keeps only its SHA-256. docs/security.md says the same.
"""

from __future__ import annotations

import hmac
import threading

from fastapi import Request, Response

from dgxie.errors import Forbidden
from dgxie.web.store import TTL_SECONDS, WebSession

COOKIE = "dgxie_session"


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
