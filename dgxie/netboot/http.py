"""Minimal HTTP/1.1 pieces for the boot fast path (pure): request heads, Range, response heads.

RFC 9110 (semantics: Range section 14, 206/416) and RFC 9112 (message syntax). Only what a
firmware, iPXE, curl or wrk sends for a GET/HEAD without a body; anything else is left to the
full ASGI stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

MAX_HEAD = 16 * 1024


@dataclass(frozen=True)
class Head:
    method: str
    path: str  # percent-decoded
    query: dict[str, list[str]]
    version: str
    headers: dict[str, str]  # lowercased names, last one wins

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn

    @property
    def has_body(self) -> bool:
        return "transfer-encoding" in self.headers or self.headers.get("content-length", "0").strip() not in ("", "0")


def parse_head(raw: bytes) -> Head | None:
    """Parse a request head (without the final CRLFCRLF); None if it is not a plain HTTP/1.x one."""
    try:
        text = raw.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[1].startswith("/"):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        headers[name.lower()] = value.strip()
    url = urlsplit(parts[1])
    return Head(parts[0], unquote(url.path), parse_qs(url.query), parts[2], headers)


class Unsatisfiable(Exception):
    """416: the range starts past the end of the file."""


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """One `bytes=` range -> (first, last) inclusive, None for the whole file (no header, a
    syntax we ignore, or several ranges: RFC 9110 lets a server send 200 instead)."""
    if not value:
        return None
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_s, sep, last_s = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if first_s == "":
            n = int(last_s)  # suffix: the last n bytes
            if n <= 0:
                raise Unsatisfiable
            return max(0, size - n), size - 1
        first = int(first_s)
        last = int(last_s) if last_s else size - 1
    except ValueError:
        return None
    if first < 0:
        return None
    if first >= size:
        raise Unsatisfiable
    if last < first:
        return None
    return first, min(last, size - 1)


def response_head(status: int, reason: str, headers: list[tuple[str, str]], *, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def simple_response(status: int, reason: str, body: bytes, content_type: str, *, keep_alive: bool,
                    head_only: bool = False) -> bytes:
    head = response_head(status, reason, [("Content-Type", content_type), ("Content-Length", str(len(body)))],
                         keep_alive=keep_alive)
    return head if head_only else head + body
