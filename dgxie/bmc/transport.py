"""Error mapping, retry policy and TLS settings shared by the Redfish code (`dgxie.bmc.redfish`,
`dgxie.bmc.redfish_inventory`; the httpx benchmark variant in bench/bmc/ uses them too).

One place decides what a failure *is* (unreachable, timeout, TLS, auth, not-JSON) and whether it
is worth another attempt; messages name the URL, never a credential.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeVar

import certifi

from dgxie.bmc.base import (
    BmcAuthError,
    BmcError,
    BmcProtocolError,
    BmcTimeout,
    BmcTlsError,
    BmcUnreachable,
    Options,
)

RETRYABLE: tuple[type[BmcError], ...] = (BmcUnreachable, BmcTimeout)
T = TypeVar("T")


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def classify(exc: BaseException, url: str) -> BmcError:
    """Turn a transport exception (requests, urllib3, httpx, ssl, socket) into a `BmcError`."""
    if isinstance(exc, BmcError):
        return exc
    chain = _chain(exc)
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    if any(isinstance(e, ssl.SSLError) for e in chain) or "SSL" in text or "CERTIFICATE" in text.upper():
        reason = next((str(e) for e in chain if isinstance(e, ssl.SSLError)), "TLS handshake failed")
        return BmcTlsError(f"{url}: TLS error: {reason}")
    if "Timeout" in text or "timed out" in text:
        return BmcTimeout(f"{url}: timed out")
    if "RemoteProtocolError" in text or "IncompleteRead" in text or "ChunkedEncodingError" in text:
        return BmcProtocolError(f"{url}: connection closed mid-response (truncated)")
    if any(isinstance(e, (ConnectionError, OSError)) for e in chain) or "Connect" in text:
        return BmcUnreachable(f"{url}: unreachable ({type(chain[-1]).__name__})")
    return BmcUnreachable(f"{url}: {type(exc).__name__}")


def decode(url: str, status: int, body: bytes | str, content_type: str | None) -> dict[str, Any]:
    """A Redfish JSON object from a response body, or a `BmcProtocolError` saying what came instead."""
    if status in (401, 403):
        raise BmcAuthError(f"{url}: HTTP {status}: credentials rejected")
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    head = text.lstrip()[:200].lower()
    if head.startswith("<") or (content_type or "").startswith("text/html"):
        raise BmcProtocolError(f"{url}: HTTP {status}: HTML instead of Redfish JSON")
    if status >= 400:
        raise BmcProtocolError(f"{url}: HTTP {status}{': ' + error_message(text) if text else ''}")
    try:
        doc = json.loads(text)
    except ValueError:
        raise BmcProtocolError(f"{url}: truncated or invalid JSON ({len(text)} bytes)") from None
    if not isinstance(doc, dict):
        raise BmcProtocolError(f"{url}: JSON is not an object")
    return doc


def error_message(text: str) -> str:
    """The first human message of a Redfish error body (DSP0266 9.6), or a short excerpt."""
    try:
        doc = json.loads(text)
        err = doc.get("error", {}) if isinstance(doc, dict) else {}
        info = err.get("@Message.ExtendedInfo") or []
        if info and isinstance(info[0], dict) and info[0].get("Message"):
            return str(info[0]["Message"])[:200]
        if err.get("message"):
            return str(err["message"])[:200]
    except (ValueError, AttributeError):
        pass
    return text.strip().replace("\n", " ")[:120]


def backoff_delays(retries: int, first: float) -> list[float]:
    """Delays before each retry: first, 2*first, 4*first, ... (bounded by `retries`)."""
    return [first * (2 ** i) for i in range(max(0, retries))]


def retrying(fn: Callable[[], T], opts: Options, url: str) -> T:
    """`fn()`, tried again after a retryable failure (unreachable, timeout, 503) up to
    `opts.retries` times with backoff; any other exception is classified as a `BmcError` on `url`."""
    delays = backoff_delays(opts.retries, opts.backoff)
    for attempt in range(len(delays) + 1):
        try:
            return fn()
        except Exception as exc:
            err = classify(exc, url)
            if not isinstance(err, RETRYABLE) or attempt >= len(delays):
                if err is exc:
                    raise
                raise err from None
        time.sleep(delays[attempt])
    raise AssertionError("unreachable")


def cafile(opts: Options) -> str | None:
    """The CA bundle the `redfish` library verifies with: a path, certifi's, or None (no checks)."""
    if isinstance(opts.verify, str):
        return opts.verify
    return certifi.where() if opts.verify else None
