"""Firmware version comparison, segment-wise as NVIDIA's nvfwupd does (pure).

Split on `.` and `-`; two segments compare as integers when both are decimal digits, else as
case-insensitive strings ("4A" vs "50", "rc57" vs "rc9"). Missing trailing segments count as 0
when the other side's extra segments are all zero ("1.0" == "1.0.0"); otherwise the longer
version is newer ("1.0.1" > "1.0"). Leading/trailing blanks are ignored.
"""

from __future__ import annotations

import re

_SPLIT = re.compile(r"[.\-]")
VALID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-+ ]*$")


def segments(version: str) -> list[str]:
    return [s for s in _SPLIT.split(version.strip())]


def _cmp_seg(a: str, b: str) -> int:
    if a.isdigit() and b.isdigit():
        ia, ib = int(a), int(b)
        return (ia > ib) - (ia < ib)
    la, lb = a.lower(), b.lower()
    return (la > lb) - (la < lb)


def _zero(seg: str) -> bool:
    return (seg.isdigit() and int(seg) == 0) or seg == ""


def compare(a: str, b: str) -> int:
    """-1 if a < b, 0 if equal, 1 if a > b."""
    sa, sb = segments(a), segments(b)
    for x, y in zip(sa, sb, strict=False):
        c = _cmp_seg(x, y)
        if c:
            return c
    if len(sa) == len(sb):
        return 0
    longer, sign = (sa[len(sb):], 1) if len(sa) > len(sb) else (sb[len(sa):], -1)
    return 0 if all(_zero(s) for s in longer) else sign


def is_valid(version: str) -> bool:
    """A baseline's required version must look like a version (no blanks-only, no odd characters)."""
    return bool(VALID.match(version.strip())) and version.strip() == version


def status(installed: str | None, required: str | None) -> str:
    """compliant | outdated | ahead | unknown for a component that is present (the caller decides
    `missing`): unknown when there is no requirement or the BMC reported no version."""
    if required is None or installed is None or not installed.strip():
        return "unknown"
    c = compare(installed, required)
    return "compliant" if c == 0 else "outdated" if c < 0 else "ahead"
