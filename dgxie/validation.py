"""Turn pydantic validation errors into one clear `Invalid` message."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dgxie.errors import Invalid

M = TypeVar("M", bound=BaseModel)


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
