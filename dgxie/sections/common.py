"""What every section shares: strict frozen models, HOST:PORT and duration values."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def hostport(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return value


def duration(v: Any) -> float | None:
    """Seconds, or a number with a unit: `90s`, `30m`, `6h`, `1d`."""
    if v is None or isinstance(v, int | float):
        return None if v is None else float(v)
    s = str(v).strip().lower()
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(s[-1:], 0)
    try:
        return float(s[:-1]) * unit if unit else float(s)
    except ValueError:
        raise ValueError(f"{v!r} is not a duration (e.g. 3600, 30m, 6h, 1d)") from None
