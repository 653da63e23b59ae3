"""Request input limits, one home for what the API accepts before any handler runs.

- `BodyLimit` (pure ASGI) refuses oversize bodies with 413 before reading them; `read_body` reads
  one route's body under its own, smaller limit (installer callbacks, the deploy agent's uploads).
- `parse_json` is the one JSON decoder for request bodies: an object, nested at most
  `MAX_JSON_DEPTH` deep, finite numbers only, strings without NUL and valid Unicode; anything
  else is `Invalid` (422) with one message. `JsonRoute` makes FastAPI's body parsing use it.
- `RefuseNul` (pure ASGI) answers 422 to a path or query string holding a NUL character (%00),
  which PostgreSQL text cannot store or compare.
- `MAX_INT`: the bound of integer query parameters (ids, offsets): a 32-bit signed integer column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dgxie.errors import Invalid, TooLarge

MAX_JSON_DEPTH = 32
MAX_INT = 2**31 - 1


def _refuse_constant(name: str) -> Any:
    raise Invalid(f"{name} is not a number JSON accepts (finite numbers only)")


def _float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise Invalid(f"{text[:20]} is out of range (finite numbers only)")
    return v


def _check(value: Any, what: str, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise Invalid(f"{what}: nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value, what)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, what)
            _check(v, what, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check(v, what, depth + 1)


def _check_text(text: str, what: str) -> None:
    if "\x00" in text:
        raise Invalid(f"{what}: NUL characters (\\u0000) are not accepted in strings")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{what}: a string is not valid Unicode (lone surrogate)") from None


def parse_json(body: bytes, what: str = "body") -> Any:
    """`body` decoded as a JSON object, or Invalid (422): not JSON, not an object, nested deeper than
    MAX_JSON_DEPTH, NaN/Infinity or a number out of float range, NUL or a lone surrogate in a string."""
    try:
        doc = json.loads(body, parse_constant=_refuse_constant, parse_float=_float)
    except RecursionError:
        raise Invalid(f"{what}: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise Invalid(f"{what}: not JSON") from None
    if not isinstance(doc, dict):
        raise Invalid(f"{what}: expected a JSON object")
    _check(doc, what, 1)
    return doc


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class _JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_checked_json"):
            self._checked_json = parse_json(await self.body())
        return self._checked_json


class JsonRoute(APIRoute):
    """An APIRoute whose JSON body (the same content types FastAPI decodes) goes through
    `parse_json` first, so a bad document is one `Invalid` and never reaches the handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            request = _JsonRequest(request.scope, request.receive)
            if self.body_field is not None and _is_json(request.headers.get("content-type", "")) \
                    and await request.body():
                await request.json()  # Invalid here is answered by the app's error handler
            return await handler(request)

        return checked


class RefuseNul:
    """422 for a request whose path or query string holds NUL (raw or %00), before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = bytes(scope.get("query_string", b"")).lower()
            if "\x00" in str(scope.get("path", "")) or b"%00" in query or b"\x00" in query:
                await _send_json(send, 422, "NUL characters (%00) are not accepted in the path or query")
                return
        await self.app(scope, receive, send)


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def read_body(request: Request, limit: int, what: str = "body") -> bytes:
    """The whole body, or TooLarge (413) as soon as it is declared or read past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooLarge(f"{what} larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"{what} larger than {limit} bytes")
    return bytes(body)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send) -> None:
        await _send_json(send, 413, f"request body larger than {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await self._refuse(send)
                    return
        seen = 0
        refused = False

        async def limited() -> Message:
            nonlocal seen, refused
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    raise _TooLarge
            return msg

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)


class _TooLarge(Exception):
    pass
