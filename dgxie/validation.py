"""Input checks shared by every area: pydantic errors as one clear `Invalid` message, object names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dgxie.errors import Invalid

M = TypeVar("M", bound=BaseModel)
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

# Bounds of a free-form document (a node's facts and vars, a profile's vars, an image's files),
# stated in docs/api.md: keys counted at every level, depth from the document (1) down.
DOC_MAX_KEYS = 1024
DOC_MAX_DEPTH = 16
DOC_MAX_BYTES = 64 * 1024


def check_name(v: str) -> str:
    """A profile, image or token name: lower-case letters, digits, '.', '_', '-'; at most 64."""
    if not NAME_RE.match(v):
        raise ValueError(f"{v!r} is not a valid name (a-z, 0-9, '.', '_', '-'; at most 64)")
    return v


def check_document(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """`v` unchanged, or ValueError when it passes DOC_MAX_KEYS keys, DOC_MAX_DEPTH levels or
    DOC_MAX_BYTES of JSON (so one node cannot make every list page huge)."""
    if v is None:
        return v
    keys = 0
    stack: list[tuple[Any, int]] = [(v, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > DOC_MAX_DEPTH:
            raise ValueError(f"nested deeper than {DOC_MAX_DEPTH} levels")
        if isinstance(item, dict):
            keys += len(item)
            if keys > DOC_MAX_KEYS:
                raise ValueError(f"more than {DOC_MAX_KEYS} keys")
            stack.extend((x, depth + 1) for x in item.values())
        elif isinstance(item, list):
            stack.extend((x, depth + 1) for x in item)
    size = len(json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode())
    if size > DOC_MAX_BYTES:
        raise ValueError(f"{size} bytes of JSON, more than {DOC_MAX_BYTES}")
    return v


def describe(exc: ValidationError) -> str:
    """`field: message; other.field: message` (no input values: they may be secrets)."""
    return describe_errors(exc.errors())


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """pydantic's (or FastAPI's request) error list as one line: `loc: message; loc: message`."""
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ())) or "input"
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def parse(model: type[M], data: Any, *, where: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(f"{where}{describe(exc)}") from None
