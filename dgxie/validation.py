"""Input checks shared by every area: pydantic errors as one clear `Invalid` message, object names."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dgxie.errors import Invalid

M = TypeVar("M", bound=BaseModel)
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def check_name(v: str) -> str:
    """A profile, image or token name: lower-case letters, digits, '.', '_', '-'; at most 64."""
    if not NAME_RE.match(v):
        raise ValueError(f"{v!r} is not a valid name (a-z, 0-9, '.', '_', '-'; at most 64)")
    return v


def describe(exc: ValidationError) -> str:
    """`field: message; other.field: message` (no input values: they may be secrets)."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "input"
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def parse(model: type[M], data: Any, *, where: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(f"{where}{describe(exc)}") from None
