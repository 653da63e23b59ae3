"""Redfish inventory reads of one endpoint: what `RedfishBmc.inventory()` returns.

Firmware inventory, manager versions, platform identity and system facts, on the DMTF `redfish`
library (sync, on `requests`) with a client of its own per read: a keep-alive session with HTTP
basic auth on every request (no session login, nothing to log out; the pooled logged-in client of
`dgxie.bmc.redfish` is for actions), our own retries with backoff (the library's fixed 1 s retry is
off), and `$expand=.($levels=1)` where the root advertises ExpandQuery, which reads a DGX H100's 66
components in one GET (7 requests per BMC in all, instead of ~78). One read is sequential (one
request in flight); `dgxie.bmc.scan` reads many endpoints at once.
"""

from __future__ import annotations

import base64
from typing import Any

import redfish

from dgxie.bmc import quirks
from dgxie.bmc.base import BmcAuthError, BmcError, BmcProtocolError, BmcTimeout, Endpoint, Inventory, Options
from dgxie.bmc.facts import system_facts
from dgxie.bmc.transport import cafile, decode, retrying

EXPAND = {"$expand": ".($levels=1)"}
ROOT = "/redfish/v1"


class Reader:
    """Reads one endpoint: retries with backoff, `$expand` while it works, notes on quirks met."""

    def __init__(self, ep: Endpoint, opts: Options) -> None:
        self.ep, self.opts, self.base = ep, opts, ep.base
        self.client = redfish.redfish_client(base_url=self.base, timeout=opts.timeout, max_retry=0,
                                             cafile=cafile(opts), check_connectivity=False)
        if ep.username:  # basic auth on every request: no login round trip, nothing to log out
            token = base64.b64encode(f"{ep.username}:{ep.password or ''}".encode()).decode()
            self.client.set_authorization_key(f"Basic {token}")
        self.requests = 0
        self.expand = False
        self.notes: list[str] = []

    def close(self) -> None:
        self.client._session.close()

    def get(self, path: str, *, expand: bool = False) -> dict[str, Any]:
        def once() -> dict[str, Any]:
            self.requests += 1
            r = self.client.get(path, args=EXPAND if expand else None)
            if r.status == 503:
                raise BmcTimeout(f"{self.base}{path}: HTTP 503 (busy)")
            return decode(self.base + path, r.status, r.read or b"", r.getheader("content-type"))

        return retrying(once, self.opts, self.base + path)

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


def read_endpoint(ep: Endpoint, opts: Options) -> Inventory:
    """Firmware inventory, manager versions, platform identity and system facts of one endpoint."""
    rd = Reader(ep, opts)
    try:
        return _read(rd, ep)
    finally:
        rd.close()


def _read(rd: Reader, ep: Endpoint) -> Inventory:
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

