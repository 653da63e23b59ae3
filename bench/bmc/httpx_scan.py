"""The httpx async variant of dgxie's fleet scanner, kept as a benchmark reference (bench/bmc/run.py).

dgxie used this until the benchmark showed the DMTF `redfish` library in a thread pool reading the
same fleet ~3x faster on this machine (docs/firmware.md); dgxie/bmc/scan.py is now thread-based.

The reasoning that chose it (a sync library needs 1,000 threads or a queue) did not survive the
measurement: httpx's per-request CPU cost dominates on a loaded 2-core machine.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from typing import Any

import certifi
import httpx

from dgxie.bmc import quirks
from dgxie.bmc.base import BmcAuthError, BmcError, BmcProtocolError, Endpoint, Inventory, Options
from dgxie.bmc.facts import system_facts
from dgxie.bmc.transport import RETRYABLE, backoff_delays, classify, decode

EXPAND = "$expand=.($levels=1)"
ROOT = "/redfish/v1"


class Reader:
    """Reads one endpoint: bounded in-flight requests, retries with backoff, `$expand` if it works."""

    def __init__(self, client: httpx.AsyncClient, ep: Endpoint, opts: Options) -> None:
        self.client, self.ep, self.opts = client, ep, opts
        self.base = ep.base
        self.sem = asyncio.Semaphore(max(1, opts.per_bmc))
        self.auth = httpx.BasicAuth(ep.username, ep.password or "") if ep.username else None
        self.requests = 0
        self.expand = False
        self.notes: list[str] = []

    async def get(self, path: str, *, expand: bool = False) -> dict[str, Any]:
        url = self.base + path + (("&" if "?" in path else "?") + EXPAND if expand else "")
        delays = backoff_delays(self.opts.retries, self.opts.backoff)
        for attempt in range(len(delays) + 1):
            try:
                async with self.sem:
                    self.requests += 1
                    r = await self.client.get(url, auth=self.auth or httpx.USE_CLIENT_DEFAULT)
                    body = r.content
                if r.status_code == 503 and attempt < len(delays):
                    await asyncio.sleep(delays[attempt])
                    continue
                return decode(self.base + path, r.status_code, body, r.headers.get("content-type"))
            except BmcError:
                raise
            except Exception as exc:  # transport failure: classify, maybe retry
                err = classify(exc, self.base + path)
                if isinstance(err, RETRYABLE) and attempt < len(delays):
                    await asyncio.sleep(delays[attempt])
                    continue
                raise err from None
        raise AssertionError("unreachable")

    async def members(self, path: str, *, fetch: bool = True) -> list[dict[str, Any]]:
        """Every member document of a collection: one `$expand` GET if it works, else one GET each.

        Members the BMC left unexpanded (or every member, when `$expand` failed) are read one by
        one; `fetch=False` returns such members as bare links instead.
        """
        coll: dict[str, Any] | None = None
        if self.expand:
            try:
                coll = await self.get(path, expand=True)
            except BmcAuthError:
                raise
            except BmcError as exc:
                self._note(f"{path}: $expand advertised but failed ({exc.message}); reading members one by one")
                self.expand = False
        if coll is None:
            coll = await self.get(path)
        items, note = quirks.members(coll)
        self._note(note)
        if not fetch:
            return items
        bare = [i for i, m in enumerate(items) if not quirks.is_expanded({"Members": [m]})]
        docs = await asyncio.gather(*(self.get(str(items[i].get("@odata.id", ""))) for i in bare))
        for i, d in zip(bare, docs, strict=True):
            items[i] = d
        return items

    def _note(self, note: str | None) -> None:
        if note and note not in self.notes:
            self.notes.append(note)


def _link(doc: dict[str, Any], key: str) -> str | None:
    v = doc.get(key)
    return str(v["@odata.id"]) if isinstance(v, dict) and isinstance(v.get("@odata.id"), str) else None


async def read_endpoint(client: httpx.AsyncClient, ep: Endpoint, opts: Options, *,
                        facts: bool = True) -> Inventory:
    """Firmware inventory, manager versions, platform identity (and facts) of one endpoint."""
    rd = Reader(client, ep, opts)
    root = await rd.get(ROOT)
    rd.expand = quirks.expand_supported(root)
    inv = Inventory(endpoint=ep.name)
    systems: list[dict[str, Any]] = []
    if sys_path := _link(root, "Systems"):
        systems = await rd.members(sys_path)
        host = next((s for s in systems if s.get("Model")), systems[0] if systems else {})
        inv.model, inv.manufacturer, inv.serial = host.get("Model"), host.get("Manufacturer"), host.get(
            "SerialNumber")
    upd_path = _link(root, "UpdateService")
    if upd_path is None:
        raise BmcProtocolError(f"{rd.base}: no UpdateService in the service root")
    fw_path = _link(await rd.get(upd_path), "FirmwareInventory")
    if fw_path is None:
        raise BmcProtocolError(f"{rd.base}{upd_path}: no FirmwareInventory")
    inv.components = sorted((quirks.component(d, ep.name) for d in await rd.members(fw_path)), key=lambda c: c.id)
    ids = {c.id for c in inv.components}
    managers: dict[str, tuple[str | None, str | None]] = {}
    if mgr_path := _link(root, "Managers"):
        for m in await rd.members(mgr_path):
            mid = str(m.get("Id") or "")
            managers[mid] = (m.get("FirmwareVersion"), quirks.manager_component(m, ids))
    inv.managers = {k: v[0] for k, v in managers.items()}
    rd.notes.extend(quirks.manager_notes(managers, inv.components))
    if facts:
        procs: list[dict[str, Any]] = []
        for s in systems:
            if p := _link(s, "Processors"):
                procs.extend(await _processors(rd, p))
        inv.facts = system_facts(systems, procs)
    inv.notes, inv.requests = rd.notes, rd.requests
    return inv


async def _processors(rd: Reader, path: str) -> list[dict[str, Any]]:
    """Processor docs where the BMC expands them, else the bare links (counted by their Ids)."""
    try:
        return await rd.members(path, fetch=False)
    except BmcAuthError:
        raise
    except BmcError:
        return []


def tls_context(opts: Options) -> ssl.SSLContext:
    """One TLS context for the whole scan (building one per client costs milliseconds each)."""
    if opts.verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=opts.verify if isinstance(opts.verify, str) else certifi.where())


def make_client(opts: Options, tls: ssl.SSLContext) -> httpx.AsyncClient:
    """A client for one BMC: its own small keep-alive pool (httpx's pool scans every connection
    per request, so one shared pool of thousands of connections is quadratic)."""
    limits = httpx.Limits(max_connections=opts.per_bmc, max_keepalive_connections=opts.per_bmc)
    return httpx.AsyncClient(verify=tls, timeout=httpx.Timeout(opts.timeout), limits=limits,
                             headers={"Accept": "application/json", "OData-Version": "4.0"})


async def scan_async(endpoints: Sequence[Endpoint], opts: Options, *, concurrency: int = 100,
                     on_done: Callable[[int, Inventory | BmcError], None] | None = None,
                     facts: bool = True) -> list[Inventory | BmcError]:
    """Read every endpoint, at most `concurrency` BMCs at once; a failure is returned, not raised."""
    gate = asyncio.Semaphore(max(1, concurrency))
    results: list[Inventory | BmcError] = [BmcError("not read")] * len(endpoints)
    tls = tls_context(opts)

    async def one(i: int, ep: Endpoint) -> None:
        async with gate:
            try:
                async with make_client(opts, tls) as client:
                    res: Inventory | BmcError = await read_endpoint(client, ep, opts, facts=facts)
            except BmcError as exc:
                res = exc
            except Exception as exc:  # a bug or an odd document: report it for this BMC only
                res = BmcProtocolError(f"{ep.url}: unexpected {type(exc).__name__}: {exc}")
        results[i] = res
        if on_done is not None:
            on_done(i, res)

    await asyncio.gather(*(one(i, ep) for i, ep in enumerate(endpoints)))
    return results


def scan(endpoints: Sequence[Endpoint], opts: Options, *, concurrency: int = 100,
         on_done: Callable[[int, Inventory | BmcError], None] | None = None,
         facts: bool = True) -> list[Inventory | BmcError]:
    """Synchronous entry point (runs its own event loop; call it from a worker thread, not a loop)."""
    return asyncio.run(scan_async(endpoints, opts, concurrency=concurrency, on_done=on_done, facts=facts))
