"""Input checks shared by every area: pydantic errors as one clear `Invalid` message, object names,
the bounds of free-form documents, and the one JSON body decoder (`parse_json`)."""

from __future__ import annotations

import json
import math
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

MAX_JSON_DEPTH = 32


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
        check_text(value, what)
    elif isinstance(value, dict):
        for k, v in value.items():
            check_text(k, what)
            _check(v, what, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check(v, what, depth + 1)


def check_text(text: str, what: str) -> None:
    """Invalid for a string a database cannot hold: NUL (PostgreSQL text) or a lone surrogate (not UTF-8)."""
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
