"""The deploy disk choice (pure): a profile's `disk:` rule and a machine's disks -> the disks to write.

Profile vars::

    disk:
      layout: direct          # direct (one disk, the default) | raid1 (an md mirror of two)
      select: smallest        # smallest (default) | largest, among the eligible disks
      min_size: 100G          # optional: bytes, or a number with K/M/G/T (powers of 1024, also KiB..TiB)
                              #   or KB/MB/GB/TB (powers of 1000, as drives are sold)
      serial: S1              # or by_path: / name: -- pin the disk(s) instead of selecting:
                              #   one value, or for raid1 a list of two

Selecting: eligible disks are non-removable, of non-zero size, not on USB (BMC virtual media shows
up as a USB disk) and at least `min_size`; ties go to the lower by-path, then name. raid1 takes the
first two disks of the same size in that order (a DGX's two M.2 OS drives), else the first two.
Pinning: each value must match exactly one disk (`name` may be `vda` or `/dev/vda`; `by_path` may
carry `/dev/disk/by-path/` and udev's `ata-N` and `ata-N.0` forms match), whatever its transport;
`min_size` still applies. Every refusal is one `Invalid` naming the machine's disks.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from dgxie.agent.bypath import same_path
from dgxie.agent.schemas import Disk
from dgxie.errors import Invalid
from dgxie.validation import describe as describe_error

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:([KMGTP])(i?)(B?))?$", re.I)
_POW = {"K": 1, "M": 2, "G": 3, "T": 4, "P": 5}
PinKey = Literal["serial", "by_path", "name"]


def parse_size(v: Any) -> int:
    """Bytes from an int or `100G` / `1.5TiB` / `500GB` (B without i: powers of 1000)."""
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    m = _SIZE.match(str(v).strip()) if isinstance(v, (str, float)) else None
    if m is None:
        raise ValueError(f"{v!r} is not a size (bytes, or e.g. 100G, 1.5T, 500GB)")
    unit = m[2].upper() if m[2] else ""
    base = 1000 if m[4] and not m[3] else 1024
    return int(float(m[1]) * base ** _POW.get(unit, 0))


class DiskRule(BaseModel):
    """A validated `disk:` rule (see the module doc); pins are tuples of one or two values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layout: Literal["direct", "raid1"] = "direct"
    select: Literal["smallest", "largest"] = "smallest"
    serial: tuple[str, ...] | None = None
    by_path: tuple[str, ...] | None = None
    name: tuple[str, ...] | None = None
    min_size: int | None = None

    @field_validator("serial", "by_path", "name", mode="before")
    @classmethod
    def _one_or_list(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @field_validator("serial", "by_path", "name")
    @classmethod
    def _not_blank(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and any(not s.strip() for s in v):
            raise ValueError("must not be blank")
        return None if v is None else tuple(s.strip() for s in v)

    @field_validator("min_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> int | None:
        return None if v is None else parse_size(v)

    @model_validator(mode="after")
    def _pins(self) -> DiskRule:
        pins = [k for k in ("serial", "by_path", "name") if getattr(self, k) is not None]
        if len(pins) > 1:
            raise ValueError(f"pin the disks with one of serial, by_path, name (not {' and '.join(pins)})")
        needed = self.disks_needed
        if pins and len(getattr(self, pins[0])) != needed:
            raise ValueError(f"{pins[0]}: layout {self.layout} needs {needed} value{'s' if needed > 1 else ''}, "
                             f"got {len(getattr(self, pins[0]))}")
        return self

    @property
    def disks_needed(self) -> int:
        return 2 if self.layout == "raid1" else 1

    @property
    def pin(self) -> tuple[PinKey, tuple[str, ...]] | None:
        for key in ("serial", "by_path", "name"):
            values = getattr(self, key)
            if values is not None:
                return key, values
        return None


def parse_rule(vars: dict[str, Any] | None) -> DiskRule:
    """The `disk:` rule from a profile's (or node's) merged vars; absent means the defaults."""
    value = (vars or {}).get("disk")
    if value is None:
        return DiskRule()
    if not isinstance(value, dict):
        raise Invalid("disk: must be a mapping (layout, select, serial, by_path, name, min_size)")
    try:
        return DiskRule.model_validate(value)
    except ValidationError as exc:  # a rule-wide message has no field: no "input: " before it
        raise Invalid("disk: " + describe_error(exc).removeprefix("input: ")) from None


def human(size: int) -> str:
    for unit, power in (("TiB", 4), ("GiB", 3), ("MiB", 2)):
        if size >= 1024**power:
            return f"{size / 1024**power:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} B"


def describe(disks: list[Disk]) -> str:
    """`vda 256 GiB serial X, sda 16 GiB usb removable` (what refusals name)."""
    parts = []
    for d in disks:
        bits = [d.name, human(d.size)] + ([f"serial {d.serial}"] if d.serial else [])
        bits += [t for t in (d.transport, "removable" if d.removable else None) if t]
        parts.append(" ".join(bits))
    return ", ".join(parts) or "none"


def _matches(d: Disk, key: PinKey, value: str) -> bool:
    if key == "serial":
        return d.serial is not None and d.serial == value
    if key == "name":
        return value.removeprefix("/dev/") == d.name
    return d.by_path is not None and same_path(value.removeprefix("/dev/disk/by-path/"), d.by_path)


def _pinned(disks: list[Disk], rule: DiskRule, key: PinKey, values: tuple[str, ...]) -> list[Disk]:
    chosen = []
    for value in values:
        found = [d for d in disks if _matches(d, key, value)]
        if len(found) != 1:
            what = "no disk matches" if not found else f"{len(found)} disks match"
            raise Invalid(f"{what} {key} {value} (disks: {describe(disks)})")
        chosen.append(found[0])
    if len({d.name for d in chosen}) < len(chosen):
        raise Invalid(f"raid1 needs 2 different disks, {key} names {chosen[0].name} twice")
    for d in chosen:
        if d.size <= 0 or (rule.min_size is not None and d.size < rule.min_size):
            raise Invalid(f"disk {d.name} ({human(d.size)}) is smaller than min_size {human(rule.min_size or 1)}")
    return chosen


def choose(disks: list[Disk], rule: DiskRule) -> list[Disk]:
    """The disks to deploy to, in order (one for direct, two for raid1); `Invalid` when none fit."""
    if rule.pin is not None:
        return _pinned(disks, rule, *rule.pin)
    eligible = [d for d in disks if not d.removable and d.size > 0 and (d.transport or "").lower() != "usb"
                and (rule.min_size is None or d.size >= rule.min_size)]
    needed = rule.disks_needed
    if len(eligible) < needed:
        need = "a non-removable, non-USB disk" + (f" of at least {human(rule.min_size)}" if rule.min_size else "")
        if needed == 2:
            raise Invalid(f"raid1 needs 2 disks, found {len(eligible)} ({need}; disks: {describe(disks)})")
        raise Invalid(f"no disk to deploy to: need {need} (disks: {describe(disks)})")
    sign = 1 if rule.select == "smallest" else -1
    ordered = sorted(eligible, key=lambda d: (sign * d.size, d.by_path or "~", d.name))
    if needed == 1:
        return ordered[:1]
    for d in ordered:
        same = [e for e in ordered if e.size == d.size]
        if len(same) >= 2:
            return same[:2]
    return ordered[:2]
