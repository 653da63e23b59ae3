"""Error mapping, retry policy and TLS settings shared by the Redfish code (`dgxie.bmc.redfish`,
`dgxie.bmc.redfish_inventory`; the httpx benchmark variant in bench/bmc/ uses them too).

One place decides what a failure *is* (unreachable, timeout, TLS, auth, not-JSON) and whether it
is worth another attempt; messages are one line naming the URL and what failed, never a
credential or a Python exception name (an unexpected exception inside the HTTP stack is logged
with its traceback on the `dgxie.bmc` logger at INFO, and reported as a protocol error).

What the HTTP stack says besides errors stays off the terminal but not out of the logs: the
`redfish` library's logger gets a `NullHandler` (its records still reach whatever handlers the
process configured, e.g. `dgxie serve`'s; a CLI command has none, so Python's last-resort stderr
handler no longer prints them), and urllib3's `InsecureRequestWarning` is ignored, because
`bmc.tls_verify: false` is the site's stated choice that would otherwise be repeated on every
request (the `redfish` library turns that warning off on import too; this states it here).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import certifi
from urllib3.exceptions import InsecureRequestWarning

from dgxie.bmc.base import (
    BmcAuthError,
    BmcError,
    BmcProtocolError,
    BmcTimeout,
    BmcTlsError,
    BmcUnreachable,
    Options,
)

log = logging.getLogger("dgxie.bmc")
logging.getLogger("redfish").addHandler(logging.NullHandler())
warnings.filterwarnings("ignore", category=InsecureRequestWarning)
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
        return BmcUnreachable(f"{url}: unreachable ({_why(chain)})")
    log.info("%s: unexpected failure in the HTTP stack", url, exc_info=exc)
    return BmcProtocolError(f"{url}: an answer the Redfish client could not handle")


def _why(chain: list[BaseException]) -> str:
    """Why a connection failed, in words (not an exception class name)."""
    for e in reversed(chain):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return "host name not resolved"
        if isinstance(e, OSError) and e.strerror:
            return str(e.strerror).lower()
    return "no connection"


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
