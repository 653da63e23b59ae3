"""The OpenAPI document, told true: every operation's role, error statuses and error body.

Each operation's error statuses come from its shape, by one rule (`derived_statuses`):

- 503 always: the server is saturated or its database unavailable (`Retry-After` says when to retry);
- 401 and 403 when a role is required (`auth.RoleCheck` among its dependencies);
- 404 when it has path parameters (no such object; a parameter holding `/` matches no route);
- 422 when it takes any parameter or a body (`{"detail": "query.limit: ..."}`, NUL refused);
- 413 when it takes a body (`api.max_body_bytes`).

Statuses only the handler knows (409) are declared on the route: `responses=conflict("why")`.
Every error status gets the one `Error` body `{"detail": str}` (validation errors included).
The operation states its role in `x-dgxie-role` (`viewer`, `operator`, `admin` or `none` for the
unauthenticated boot and operational endpoints) and in the last line of its description.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict

from dgxie.api.auth import RoleCheck

Responses = dict[int | str, dict[str, Any]]
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ROLE_KEY = "x-dgxie-role"
ERROR_TEXT = {
    401: "No bearer token, or an unknown or revoked one.",
    403: "The token's role is below the one this operation needs.",
    404: "No such object (or no route for this path).",
    409: "Conflict with the current state.",
    413: "Request body larger than `api.max_body_bytes`.",
    422: "Invalid input: not JSON, a parameter or field refused or out of its bounds; `detail` names each "
         "(`body.hostname: ...; query.limit: ...`).",
    503: "Saturated, or the database is unavailable: retry after `Retry-After` seconds.",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}


class ErrorOut(BaseModel):
    """Every error answer: one human-readable message (never a list, never a stack trace)."""

    model_config = ConfigDict(title="Error", json_schema_extra={"examples": [{"detail": "no node 'gpu99'"}]})
    detail: str


def conflict(why: str) -> Responses:
    """`responses=` for a route that answers 409 when `why`."""
    return {409: {"description": f"Conflict: {why}."}}


def missing(why: str) -> Responses:
    """`responses=` for a route without path parameters that answers 404 when `why`."""
    return {404: {"description": f"Not found: {why}."}}


def example(value: Any, *, status: int = 200, media: str = "application/json") -> Responses:
    """`responses=` giving the success answer an example (for answers without a model of their own)."""
    return {status: {"content": {media: {"example": value}}}}


def role_of(route: APIRoute) -> str | None:
    """The role a route's dependencies require, or None for an unauthenticated route."""

    def walk(dep: Dependant) -> str | None:
        if isinstance(dep.call, RoleCheck):
            return dep.call.role.value
        for sub in dep.dependencies:
            if (found := walk(sub)) is not None:
                return found
        return None

    return walk(route.dependant)


def derived_statuses(route: APIRoute, role: str | None) -> set[int]:
    """The error statuses an operation of this shape can answer (the module docstring's rule)."""
    d = route.dependant
    statuses = {503}
    if role is not None:
        statuses |= {401, 403}
    if d.path_params:
        statuses.add(404)
    if route.body_field is not None:
        statuses |= {413, 422}
    if d.path_params or d.query_params or d.header_params or route.body_field is not None:
        statuses.add(422)
    return statuses


def _document(op: dict[str, Any], route: APIRoute) -> None:
    role = role_of(route)
    op[ROLE_KEY] = role or "none"
    who = (f"Role: `{role}` or above (bearer token)." if role else
           "No token: unauthenticated (boot clients, monitoring).")
    op["description"] = f"{op.get('description', '').strip()}\n\n{who}".strip()
    responses: dict[str, Any] = op.setdefault("responses", {})
    declared = {int(k) for k in responses if k.isdigit() and int(k) >= 400}
    for status in sorted(derived_statuses(route, role) | declared):
        entry = responses.setdefault(str(status), {})
        if status == 422 or not entry.get("description"):  # FastAPI's 422 text is for its list body
            entry["description"] = ERROR_TEXT.get(status, "Error.")
        if status == 422 or "content" not in entry:  # a route may document its own error body (/healthz)
            entry["content"] = {"application/json": {"schema": ERROR_REF}}
        if status == 503:
            entry["headers"] = RETRY_AFTER


def operations(app: FastAPI) -> Iterator[tuple[str, str, APIRoute]]:
    """(path as in the document, method, route) of every operation the document shows."""
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        if isinstance(route, APIRoute) and rc.include_in_schema:
            for method in sorted(rc.methods or ()):
                yield str(rc.path_format), method, route


def build(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document for `app`, with roles, errors and the Error schema filled in."""
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    for path, method, route in operations(app):
        op = spec["paths"].get(path, {}).get(method.lower())
        if op is not None:
            _document(op, route)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ErrorOut.model_json_schema()
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec


def install(app: FastAPI) -> None:
    """Serve `build(app)` (once, cached) as the app's /openapi.json."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
