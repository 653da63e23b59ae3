"""MAC address parsing (pure).

Accepts `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`, Cisco `aabb.ccdd.eeff` and bare `aabbccddeeff`;
the one stored form is lower-case, colon-separated.
"""

from __future__ import annotations

import re

_CANONICAL = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_HEX12 = re.compile(r"^[0-9a-f]{12}$")
_SEP6 = re.compile(r"^[0-9a-f]{1,2}([:-])[0-9a-f]{1,2}(\1[0-9a-f]{1,2}){4}$")
_CISCO = re.compile(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$")


def canonical_mac(value: str) -> str:
    """Return `value` as `aa:bb:cc:dd:ee:ff`, or raise ValueError naming the bad input."""
    v = value.strip().lower()
    if _CANONICAL.fullmatch(v):  # already the stored form (most imports): nothing to rebuild
        if int(v[0:2], 16) & 1:
            raise ValueError(f"{value!r} is a multicast address, not a NIC's MAC")
        return v
    if _SEP6.match(v):
        digits = "".join(p.zfill(2) for p in re.split(r"[:-]", v))
    elif _CISCO.match(v):
        digits = v.replace(".", "")
    elif _HEX12.match(v):
        digits = v
    else:
        raise ValueError(f"{value!r} is not a MAC address (use aa:bb:cc:dd:ee:ff, AA-BB-.., or aabb.ccdd.eeff)")
    if int(digits[0:2], 16) & 1:
        raise ValueError(f"{value!r} is a multicast address, not a NIC's MAC")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def mac_bytes(mac: str) -> bytes:
    """The 6 raw bytes of a canonical MAC."""
    return bytes.fromhex(mac.replace(":", ""))
