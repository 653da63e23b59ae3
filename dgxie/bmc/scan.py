"""Fleet reads over Redfish: firmware inventory, managers and system facts of many BMCs at once.

The DMTF `redfish` library (sync, on `requests`) in a thread pool: one client (keep-alive
session) per BMC, at most `concurrency` BMCs in flight, each BMC read by one thread (so never
more than `per_bmc` requests at it), our own retries with backoff (the library's fixed 1 s retry
is off), and `$expand=.($levels=1)` where the root advertises ExpandQuery, which reads a DGX
H100's 66 components in one GET (7 requests per BMC in all, instead of ~78). An httpx asyncio
variant measured ~3x slower here (bench/bmc/httpx_scan.py, bench/RESULTS.md).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import certifi
import redfish

from dgxie.bmc import quirks
from dgxie.bmc.base import BmcAuthError, BmcError, BmcProtocolError, BmcTimeout, Endpoint, Inventory, Options
from dgxie.bmc.facts import system_facts
from dgxie.bmc.transport import RETRYABLE, backoff_delays, classify, decode

EXPAND = {"$expand": ".($levels=1)"}
ROOT = "/redfish/v1"


class Reader:
    """Reads one endpoint: retries with backoff, `$expand` while it works, notes on quirks met."""

    def __init__(self, ep: Endpoint, opts: Options) -> None:
        self.ep, self.opts, self.base = ep, opts, ep.base
        cafile = opts.verify if isinstance(opts.verify, str) else (certifi.where() if opts.verify else None)
        self.client = redfish.redfish_client(base_url=self.base, timeout=opts.timeout, max_retry=0, cafile=cafile,
                                             check_connectivity=False)
        if ep.username:  # basic auth on every request: no login round trip, nothing to log out
            token = base64.b64encode(f"{ep.username}:{ep.password or ''}".encode()).decode()
            self.client.set_authorization_key(f"Basic {token}")
        self.requests = 0
        self.expand = False
        self.notes: list[str] = []

    def close(self) -> None:
        self.client._session.close()

    def get(self, path: str, *, expand: bool = False) -> dict[str, Any]:
        delays = backoff_delays(self.opts.retries, self.opts.backoff)
        for attempt in range(len(delays) + 1):
            try:
                self.requests += 1
                r = self.client.get(path, args=EXPAND if expand else None)
                if r.status == 503:
                    raise BmcTimeout(f"{self.base}{path}: HTTP 503 (busy)")
                return decode(self.base + path, r.status, r.read or b"", r.getheader("content-type"))
            except BmcError as exc:
                if not isinstance(exc, RETRYABLE) or attempt >= len(delays):
                    raise
            except Exception as exc:  # transport failure: classify, maybe retry
                err = classify(exc, self.base + path)
                if not isinstance(err, RETRYABLE) or attempt >= len(delays):
                    raise err from None
            time.sleep(delays[attempt])
        raise AssertionError("unreachable")

    def members(self, path: str, *, fetch: bool = True) -> list[dict[str, Any]]:
        """Every member document of a collection: one `$expand` GET if it works, else one GET each.

        Members the BMC left unexpanded (or all, when `$expand` failed) are read one by one;
        `fetch=False` returns them as bare links instead.
        """
        coll: dict[str, Any] | None = None
        if self.expand:
            try:
                coll = self.get(path, expand=True)
            except BmcAuthError:
                raise
            except BmcError as exc:
                self._note(f"{path}: $expand advertised but failed ({exc.message}); reading members one by one")
                self.expand = False
        if coll is None:
            coll = self.get(path)
        items, note = quirks.members(coll)
        self._note(note)
        if fetch:
            for i, m in enumerate(items):
                if not quirks.is_expanded({"Members": [m]}):
                    items[i] = self.get(str(m.get("@odata.id", "")))
        return items

    def _note(self, note: str | None) -> None:
        if note and note not in self.notes:
            self.notes.append(note)


def _link(doc: dict[str, Any], key: str) -> str | None:
    v = doc.get(key)
    return str(v["@odata.id"]) if isinstance(v, dict) and isinstance(v.get("@odata.id"), str) else None


def read_endpoint(ep: Endpoint, opts: Options, *, facts: bool = True) -> Inventory:
    """Firmware inventory, manager versions, platform identity (and facts) of one endpoint."""
    rd = Reader(ep, opts)
    try:
        return _read(rd, ep, facts)
    finally:
        rd.close()


def _read(rd: Reader, ep: Endpoint, facts: bool) -> Inventory:
    root = rd.get(ROOT)
    rd.expand = quirks.expand_supported(root)
    inv = Inventory(endpoint=ep.name)
    systems: list[dict[str, Any]] = []
    if sys_path := _link(root, "Systems"):
        systems = rd.members(sys_path)
        host = next((s for s in systems if s.get("Model")), systems[0] if systems else {})
        inv.model, inv.manufacturer, inv.serial = host.get("Model"), host.get("Manufacturer"), host.get(
            "SerialNumber")
    upd_path = _link(root, "UpdateService")
    if upd_path is None:
        raise BmcProtocolError(f"{rd.base}: no UpdateService in the service root")
    fw_path = _link(rd.get(upd_path), "FirmwareInventory")
    if fw_path is None:
        raise BmcProtocolError(f"{rd.base}{upd_path}: no FirmwareInventory")
    inv.components = sorted((quirks.component(d, ep.name) for d in rd.members(fw_path)), key=lambda c: c.id)
    ids = {c.id for c in inv.components}
    managers: dict[str, tuple[str | None, str | None]] = {}
    if mgr_path := _link(root, "Managers"):
        for m in rd.members(mgr_path):
            managers[str(m.get("Id") or "")] = (m.get("FirmwareVersion"), quirks.manager_component(m, ids))
    inv.managers = {k: v[0] for k, v in managers.items()}
    rd.notes.extend(quirks.manager_notes(managers, inv.components))
    if facts:
        procs: list[dict[str, Any]] = []
        for s in systems:
            if p := _link(s, "Processors"):
                try:  # processor docs where the BMC expands them, else bare links (counted by Id)
                    procs.extend(rd.members(p, fetch=False))
                except BmcAuthError:
                    raise
                except BmcError:
                    pass
        inv.facts = system_facts(systems, procs)
    inv.notes, inv.requests = rd.notes, rd.requests
    return inv


def scan(endpoints: Sequence[Endpoint], opts: Options, *, concurrency: int = 100,
         on_done: Callable[[int, Inventory | BmcError], None] | None = None,
         facts: bool = True) -> list[Inventory | BmcError]:
    """Read every endpoint, at most `concurrency` at once; a failure is returned, not raised.
    `on_done` is called (serialised) as each endpoint finishes."""
    results: list[Inventory | BmcError] = [BmcError("not read")] * len(endpoints)
    lock = threading.Lock()

    def one(i: int) -> None:
        ep = endpoints[i]
        try:
            res: Inventory | BmcError = read_endpoint(ep, opts, facts=facts)
        except BmcError as exc:
            res = exc
        except Exception as exc:  # a bug or an odd document: report it for this BMC only
            res = BmcProtocolError(f"{ep.url}: unexpected {type(exc).__name__}: {exc}")
        results[i] = res
        if on_done is not None:
            with lock:
                on_done(i, res)

    if endpoints:
        with ThreadPoolExecutor(max(1, min(concurrency, len(endpoints))), thread_name_prefix="bmc-scan") as pool:
            list(pool.map(one, range(len(endpoints))))
    return results
