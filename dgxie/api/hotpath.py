"""The inventory's hot requests ahead of FastAPI's router (issue 14): `GET /api/v1/nodes/{ref}`,
`GET /api/v1/nodes?...` and `POST /api/v1/nodes`, what a dashboard, a script, Ansible or an
enrolment loop repeats most.

Through the router such a request paid for matching ~100 routes, solving its dependencies (bearer
scheme, role check, six query parameters or the body through FastAPI), the exception and
exit-stack layers, and only then its own work: routing and dependencies were a third of the
server's CPU for one node read (py-spy, bench/RESULTS.md). `HotPath` sits inside the admission
gate and the HTTP metrics (both still count the request) and answers a well-formed one itself,
with the routes' own answer builders (`api.v1.nodes.list_answer`, `get_answer`,
`enroll_answer`): the same bytes, headers, `ETag`s and metrics label as the route.

It answers only what it can check exactly as the route would, and hands anything else to the
router unchanged (a body it read is replayed), where the one home of every refusal is: no bearer
token, one not in the token cache (the route looks it up; the next request is answered here), a
role too low, a query key the route does not take or one given twice, a number that is not plain
decimal or is out of bounds, an unknown state, a body that is not JSON by its Content-Type or
does not parse (`validation.parse_json`) or validate (`NodeCreate`). The work's own refusals
(404 no such node, 409 taken, 422 unknown profile) and a database outage (503) are answered by
the app's own error answers (`api.answers`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dgxie import db
from dgxie.api import answers
from dgxie.api.limits import MAX_INT, is_json
from dgxie.api.v1 import nodes as nodes_api
from dgxie.boot.state import State
from dgxie.context import Context
from dgxie.errors import DgxieError
from dgxie.nodes.schemas import NodeCreate
from dgxie.nodes.service import MAX_PAGE
from dgxie.tokens import RANK, Principal, Role
from dgxie.validation import parse_json

PREFIX = "/api/v1/nodes"
_LIST_KEYS = frozenset(("state", "role", "tag", "profile", "limit", "offset"))
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,17}")
_STATES = {s.value: s for s in State}


class _Route:
    """What `api.metrics.route_label` reads of a matched route: its template."""

    def __init__(self, path: str) -> None:
        self.path = self.path_format = path


_LIST_ROUTE, _GET_ROUTE = _Route(PREFIX), _Route(PREFIX + "/{ref}")


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case), as Starlette's `Headers.get`."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def bearer(scope: Scope) -> str | None:
    """The credentials of the first Authorization header if its scheme is Bearer (as FastAPI's
    `HTTPBearer`: scheme, one space, credentials), else None."""
    scheme, _, cred = (header(scope, b"authorization") or "").partition(" ")
    return cred if scheme.lower() == "bearer" and cred else None


def list_args(query: str) -> dict[str, Any] | None:
    """A node page's arguments from its query string, or None where the route must decide."""
    args: dict[str, Any] = {"state": None, "role": None, "tag": None, "profile": None, "limit": 100, "offset": 0}
    seen = set()
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _LIST_KEYS or key in seen:
            return None
        seen.add(key)
        if key in ("limit", "offset"):
            if not _DECIMAL.fullmatch(value):
                return None
            number = int(value)
            if not (1 <= number <= MAX_PAGE if key == "limit" else number <= MAX_INT):
                return None
            args[key] = number
        elif key == "state":
            if value not in _STATES:
                return None
            args[key] = _STATES[value]
        else:
            args[key] = value
    return args


async def _read_all(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Every message of the request body, and the body (None if the client went away first).
    Bounded: `BodyLimit`, outside, refuses past `api.max_body_bytes`."""
    messages, body = [], bytearray()
    while True:
        msg = await receive()
        messages.append(msg)
        if msg["type"] != "http.request":
            return messages, None
        body += msg.get("body", b"")
        if not msg.get("more_body", False):
            return messages, bytes(body)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


class HotPath:
    """ASGI middleware: the requests above, else the wrapped app. `answered` counts the requests
    answered here (tests see which way a request went)."""

    def __init__(self, app: ASGIApp, ctx: Context) -> None:
        self.app, self.ctx = app, ctx
        self.answered = 0

    def _principal(self, scope: Scope, role: Role) -> Principal | None:
        cred = bearer(scope)
        principal = self.ctx.tokens.cached(cred) if cred is not None else None
        return principal if principal is not None and RANK[principal.role] >= RANK[role] else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" and not scope.get("root_path") else ""
        response: Response | None = None
        if path == PREFIX and scope["method"] == "POST":
            messages, body = await _read_all(receive)
            receive = _replay(messages, receive)
            response = await self._enroll(scope, body)
        elif path.startswith(PREFIX) and scope["method"] == "GET":
            response = await self._read(scope, path)
        if response is None:
            await self.app(scope, receive, send)
        else:
            self.answered += 1
            await response(scope, receive, send)

    async def _read(self, scope: Scope, path: str) -> Response | None:
        ref = path[len(PREFIX) + 1:] if path[len(PREFIX):len(PREFIX) + 1] == "/" else None
        if (path != PREFIX and (not ref or "/" in ref)) or self._principal(scope, Role.VIEWER) is None:
            return None
        request = Request(scope)
        if ref is None:
            args = list_args(scope["query_string"].decode("latin-1"))
            if args is None:
                return None
            scope["route"] = _LIST_ROUTE
            answer = nodes_api.list_answer(request, **args)
        else:
            scope["route"], scope["path_params"] = _GET_ROUTE, {"ref": ref}
            answer = nodes_api.get_answer(ref)
        return await self._answered(nodes_api.read(request, answer))

    async def _enroll(self, scope: Scope, body: bytes | None) -> Response | None:
        principal = self._principal(scope, Role.OPERATOR)
        if principal is None or not body or not is_json(header(scope, b"content-type") or ""):
            return None
        try:
            data = NodeCreate.model_validate(parse_json(body))
        except (DgxieError, ValidationError):
            return None  # the route's refusal, in the route's words
        scope["route"] = _LIST_ROUTE
        return await self._answered(nodes_api.enroll_answer(Request(scope), data, principal.actor))

    async def _answered(self, work: Any) -> Response:
        try:
            response: Response = await work
        except DgxieError as exc:
            return answers.dgxie_error(exc)
        except db.UNAVAILABLE as exc:
            return answers.db_unavailable(self.ctx, exc)
        return response
