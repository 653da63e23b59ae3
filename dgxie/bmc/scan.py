"""Fleet inventory: `Bmc.inventory()` of many endpoints at once, each through its driver.

A thread pool of at most `concurrency` endpoints in flight; each endpoint gets its driver from
`dgxie.bmc.drivers.connect()` (so IPMI endpoints answer `BmcUnsupported` like any other failure) and is
read by one thread. A failure is that endpoint's result, never an exception out of the scan.
Threads over the sync `redfish` library, not asyncio: an httpx asyncio variant measured ~3x slower
here (bench/bmc/httpx_scan.py, bench/RESULTS.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from dgxie.bmc.base import BmcError, BmcProtocolError, Endpoint, Inventory, Options
from dgxie.bmc.drivers import connect


def read(ep: Endpoint, opts: Options) -> Inventory | BmcError:
    """One endpoint's inventory, or the error that stopped it (a bug included, for this BMC only)."""
    try:
        with connect(ep, opts) as driver:
            return driver.inventory()
    except BmcError as exc:
        return exc
    except Exception as exc:  # a bug or an odd document: report it for this BMC only
        return BmcProtocolError(f"{ep.url}: unexpected {type(exc).__name__}: {exc}")


def scan(endpoints: Sequence[Endpoint], opts: Options, *, concurrency: int = 100,
         on_done: Callable[[int, Inventory | BmcError], None] | None = None) -> list[Inventory | BmcError]:
    """Read every endpoint, at most `concurrency` at once; results in the order of `endpoints`.
    `on_done(index, result)` is called (serialised) as each endpoint finishes."""
    results: list[Inventory | BmcError] = [BmcError("not read")] * len(endpoints)
    lock = threading.Lock()

    def one(i: int) -> None:
        results[i] = read(endpoints[i], opts)
        if on_done is not None:
            with lock:
                on_done(i, results[i])

    if endpoints:
        with ThreadPoolExecutor(max(1, min(concurrency, len(endpoints))), thread_name_prefix="bmc-scan") as pool:
            list(pool.map(one, range(len(endpoints))))
    return results
