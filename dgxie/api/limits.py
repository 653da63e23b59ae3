"""Request input limits, one home for what the API accepts before any handler runs.

- `BodyLimit` (pure ASGI) refuses oversize bodies with 413 before reading them; `read_body` reads
  one route's body under its own, smaller limit (installer callbacks, the deploy agent's uploads).
- `parse_json` (from `dgxie.validation`, so services use it too) is the one JSON decoder for
  request bodies: an object, nested at most `MAX_JSON_DEPTH` deep, finite numbers only, strings
  without NUL and valid Unicode; anything else is `Invalid` (422) with one message. `JsonRoute`
  makes FastAPI's body parsing use it, whatever the body's Content-Type (`curl -d` sends a form type).
- `RefuseNul` (pure ASGI) answers 422 to a path or query string holding a NUL character (%00),
  which PostgreSQL text cannot store or compare.
- `MAX_INT`: the bound of integer query parameters (ids, offsets): a 32-bit signed integer column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dgxie.errors import Invalid, TooLarge
from dgxie.validation import MAX_JSON_DEPTH, parse_json

MAX_INT = 2**31 - 1
__all__ = ["MAX_INT", "MAX_JSON_DEPTH", "BodyLimit", "JsonRoute", "RefuseNul", "parse_json", "read_body"]


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class _JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_checked_json"):
            self._checked_json = parse_json(await self.body())
        return self._checked_json


def _as_json(request: Request) -> None:
    """Make REQUEST say `Content-Type: application/json` (its body was read, and parsed as JSON)."""
    request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"] + [
        (b"content-type", b"application/json")]
    request.__dict__.pop("_headers", None)


class JsonRoute(APIRoute):
    """An APIRoute whose body goes through `parse_json` first, so a bad document is one `Invalid` and
    never reaches the handler. The body is read as JSON whatever its Content-Type (`curl -d` sends
    application/x-www-form-urlencoded): one that is not JSON is 422 `body: not JSON (send ...)`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        form = self.body_field is not None and isinstance(self.body_field.field_info, params.Form)

        async def checked(request: Request) -> Response:
            request = _JsonRequest(request.scope, request.receive)
            if self.body_field is not None and not form and await request.body():
                if is_json(request.headers.get("content-type", "")):
                    await request.json()  # Invalid here is answered by the app's error handler
                else:
                    try:
                        await request.json()
                    except Invalid as exc:
                        raise Invalid(f"{exc.detail} (send a JSON object, with Content-Type: application/json)"
                                      ) from None
                    _as_json(request)
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
