"""Redaction of secrets from output dgxie keeps (bootstrap and Ansible output tails in events).

A role's secret often reaches the node in one form and is printed in another: the munge key is
stored as base64 and written decoded, a join token shows up hex-dumped. `forms()` lists every
form we redact for one secret: the value itself; its base64 (standard and url-safe, with and
without padding) and hex (lower and upper case); and when the value is itself base64, the decoded
bytes and their hex and base64 forms too. Forms shorter than `MIN_FORM` are left alone (they would
redact ordinary words). Pure: strings in, a string out.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

MIN_FORM = 6
MARK = "[redacted]"


def _encodings(raw: bytes) -> set[bytes]:
    b64 = base64.b64encode(raw)
    url = base64.urlsafe_b64encode(raw)
    return {raw, b64, b64.rstrip(b"="), url, url.rstrip(b"="), raw.hex().encode(), raw.hex().upper().encode()}


def _decoded(value: str) -> bytes | None:
    """The bytes `value` encodes when it is (standard or url-safe) base64, else None."""
    text = "".join(value.split())
    if len(text) < 8:
        return None
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return decode(padded.encode(), validate=True) if decode is base64.b64decode else decode(padded.encode())
        except (binascii.Error, ValueError):
            continue
    return None


def forms(secret: str) -> set[str]:
    """Every text form of `secret` to redact (see the module docstring)."""
    raw = secret.encode()
    out = _encodings(raw)
    decoded = _decoded(secret)
    if decoded:
        out |= _encodings(decoded)
    # output is kept as UTF-8 decoded with errors="replace": match binary forms the same way
    texts = {b.decode("utf-8", errors="replace") for b in out}
    return {t for t in texts if len(t) >= MIN_FORM}


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every form of every secret replaced by `[redacted]` (longest first, so a form
    that contains another is removed whole)."""
    every: set[str] = set()
    for s in secrets:
        if s:
            every |= forms(s)
    for form in sorted(every, key=len, reverse=True):
        text = text.replace(form, MARK)
    return text
