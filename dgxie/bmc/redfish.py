"""Redfish driver on the DMTF `redfish` library: power, one-time boot, firmware update, tasks.

Actions go through one logged-in client per BMC and process (keyed by URL, user and a digest of
the password), shared by threads: a Redfish session where the service gives a token, HTTP basic
auth otherwise (no SessionService, sessions refused, or a login answered without a token: see
`dgxie.bmc.redfish_auth`). Sessions are never logged out; a BMC expires
them after its SessionTimeout (a CLI command is a process of its own, so each one logs in again).
A 401 logs in once more (an expired session). Each BMC has a concurrency limit (`per_bmc`), and
requests retry with exponential backoff on connection errors, timeouts and 503 (the library's own
retry, a fixed 1 s sleep, is turned off). `inventory()` is a separate read on a client of its own
with basic auth (`dgxie.bmc.redfish_inventory`).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, ClassVar

import redfish

from dgxie.bmc import quirks
from dgxie.bmc.base import (
    Bmc,
    BmcActionFailed,
    BmcAuthError,
    BmcProtocolError,
    BmcTimeout,
    BootDevice,
    Endpoint,
    Inventory,
    Options,
    PowerAction,
    PowerState,
    TaskProgress,
    TaskResult,
)
from dgxie.bmc.redfish_auth import login
from dgxie.bmc.redfish_inventory import read_endpoint
from dgxie.bmc.transport import cafile, classify, decode, error_message, retrying

BOOT_TARGETS = {"pxe": "Pxe", "disk": "Hdd"}
_lock = threading.Lock()
_clients: dict[tuple[str, str | None, str], Any] = {}
_limits: dict[tuple[str, str | None, str], threading.BoundedSemaphore] = {}


class Response:
    def __init__(self, status: int, doc: dict[str, Any], headers: dict[str, str], text: str) -> None:
        self.status, self.doc, self.headers, self.text = status, doc, headers, text


class RedfishBmc(Bmc):
    protocol: ClassVar[str] = "redfish"

    def __init__(self, endpoint: Endpoint, opts: Options | None = None) -> None:
        self.endpoint = endpoint
        self.opts = opts or Options()
        self.base = endpoint.base
        with _lock:
            self._limit = _limits.setdefault(endpoint.key, threading.BoundedSemaphore(max(1, self.opts.per_bmc)))
        self._system_uri: str | None = endpoint.system

    # -- transport -------------------------------------------------------------------------
    def _connect(self) -> Any:
        client = redfish.redfish_client(base_url=self.base, timeout=self.opts.timeout, max_retry=0,
                                        cafile=cafile(self.opts), check_connectivity=False)
        if self.endpoint.username:
            login(client, self.endpoint)  # a session if the BMC gives a token, else basic auth
        return client

    def _client(self, fresh: bool = False) -> Any:
        """The pooled logged-in client (a new one when `fresh` or none yet). Not retried here: it is
        only called inside `request`'s `retrying`, which would otherwise multiply the attempts."""
        key = self.endpoint.key
        with _lock:
            client = None if fresh else _clients.get(key)
        if client is None:
            try:
                client = self._connect()
            except Exception as exc:
                raise classify(exc, self.base) from None  # named by the BMC's base URL
            with _lock:
                _clients[key] = client
        return client

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                *, check: bool = True) -> Response:
        """One request through the pooled session; a 401 re-logs in once (expired session)."""

        def go(fresh: bool) -> Response:
            client = self._client(fresh)
            with self._limit:
                r = client._rest_request(path, method=method, body=body, headers=headers)
            text = r.text or ""
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            if r.status == 503:
                raise BmcTimeout(f"{self.base}{path}: HTTP 503 (busy)")
            if r.status in (401, 403):
                raise BmcAuthError(f"{self.base}{path}: HTTP {r.status}: credentials rejected")
            doc: dict[str, Any] = {}
            if check:
                doc = decode(self.base + path, r.status, text, hdrs.get("content-type"))
            elif r.status < 400 and text.strip():
                try:
                    doc = decode(self.base + path, r.status, text, hdrs.get("content-type"))
                except BmcProtocolError:
                    doc = {}
            return Response(r.status, doc, hdrs, text)

        try:
            return retrying(lambda: go(False), self.opts, self.base + path)
        except BmcAuthError:
            if not self.endpoint.username:
                raise
            return retrying(lambda: go(True), self.opts, self.base + path)

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path).doc

    # -- system ----------------------------------------------------------------------------
    def _system(self) -> tuple[str, dict[str, Any]]:
        if self._system_uri is None:
            root = self.get("/redfish/v1")
            coll = self.get(str((root.get("Systems") or {}).get("@odata.id", "/redfish/v1/Systems")))
            uris, _ = quirks.member_uris(coll)
            if not uris:
                raise BmcProtocolError(f"{self.base}: no ComputerSystem")
            # The host system is the one with a Model (DGX H100: Systems/DGX, not HGX_Baseboard_0);
            # a BMC with one system (most servers) is not asked twice.
            self._system_uri = uris[0] if len(uris) == 1 else next(
                (u for u in uris if self.get(u).get("Model")), uris[0])
        return self._system_uri, self.get(self._system_uri)

    def power_state(self) -> PowerState:
        state = quirks.power_state(self._system()[1])
        return "on" if state == "on" else "off" if state == "off" else "unknown"

    def _allowed(self, system: dict[str, Any]) -> list[str] | None:
        action = (system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}
        info_uri = action.get("@Redfish.ActionInfo")
        info = None
        if isinstance(info_uri, str) and "ResetType@Redfish.AllowableValues" not in action:
            try:
                info = self.get(info_uri)
            except BmcProtocolError:
                info = None
        return quirks.allowed_resets(system, info)

    def power(self, action: PowerAction) -> PowerState:
        uri, system = self._system()
        if action == "cycle" and quirks.power_state(system) == "off":
            action = "on"  # cycling an off machine means starting it
        target = ((system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}).get(
            "target", f"{uri}/Actions/ComputerSystem.Reset")
        plan = quirks.reset_plan(action, self._allowed(system))
        for i, rtype in enumerate(plan):
            if i > 0:
                self.wait_power("off" if plan[i - 1] in ("ForceOff", "GracefulShutdown") else "on", 60)
            r = self.request("POST", target, body={"ResetType": rtype}, check=False)
            if r.status < 300:
                continue
            expect = {"On": "on", "ForceOn": "on", "ForceOff": "off", "GracefulShutdown": "off"}.get(rtype)
            if quirks.already_in_state(r.status, r.text) and expect and self.power_state() == expect:
                continue  # "already in that state": re-read confirms it
            raise BmcActionFailed(f"{self.base}: Reset {rtype}: HTTP {r.status}: {error_message(r.text)}")
        return self.power_state()

    def wait_power(self, want: str, timeout: float, poll: float = 1.0) -> bool:
        """Poll until the power state is `want` (bounded); emulators change it seconds later."""
        deadline = time.monotonic() + timeout
        while True:
            if self.power_state() == want:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)

    def boot_once(self, device: BootDevice) -> None:
        """PATCH Boot override Once, with If-Match from the ETag (retried once on 412)."""
        uri, _ = self._system()
        body = {"Boot": {"BootSourceOverrideTarget": BOOT_TARGETS[device], "BootSourceOverrideEnabled": "Once"}}
        for _attempt in range(2):
            cur = self.request("GET", uri)
            r = self.request("PATCH", uri, body=body, headers=quirks.if_match(cur.doc, cur.headers.get("etag")),
                             check=False)
            if r.status < 300:
                return
            if r.status != 412:
                break
        raise BmcActionFailed(f"{self.base}: boot override: HTTP {r.status}: {error_message(r.text)}")

    def boot_override(self) -> dict[str, Any]:
        return dict(self._system()[1].get("Boot") or {})

    # -- inventory -----------------------------------------------------------------------------
    def inventory(self) -> Inventory:
        return read_endpoint(self.endpoint, self.opts)

    # -- update ------------------------------------------------------------------------------
    def update_firmware(self, image_uri: str, targets: list[str] | None = None, *,
                        timeout: float = 3600, poll: float = 5.0, progress: TaskProgress | None = None) -> TaskResult:
        """SimpleUpdate with ImageURI (DSP0268 UpdateService), then follow the Task to its end."""
        svc = self.get("/redfish/v1/UpdateService")
        action = (svc.get("Actions") or {}).get("#UpdateService.SimpleUpdate") or {}
        target = action.get("target")
        if not target:
            raise BmcActionFailed(f"{self.base}: UpdateService has no SimpleUpdate action")
        body: dict[str, Any] = {"ImageURI": image_uri, "TransferProtocol": image_uri.split(":", 1)[0].upper()}
        if targets:
            body["Targets"] = targets
        r = self.request("POST", target, body=body, check=False)
        return self._follow(r, timeout, poll, progress)

    def push_firmware(self, data: bytes, filename: str, targets: list[str] | None = None, *,
                      timeout: float = 3600, poll: float = 5.0, progress: TaskProgress | None = None) -> TaskResult:
        """MultipartHttpPushUri upload (UpdateParameters + UpdateFile), then follow the Task."""
        svc = self.get("/redfish/v1/UpdateService")
        uri = svc.get("MultipartHttpPushUri")
        if not uri:
            raise BmcActionFailed(f"{self.base}: UpdateService has no MultipartHttpPushUri")
        params = json.dumps({"Targets": targets or [], "@Redfish.OperationApplyTime": "Immediate"})
        body = {"UpdateParameters": (None, params, "application/json"),
                "UpdateFile": (filename, data, "application/octet-stream")}
        r = self.request("POST", str(uri), body=body, headers={"Content-Type": "multipart/form-data"}, check=False)
        return self._follow(r, timeout, poll, progress)

    def _follow(self, r: Response, timeout: float, poll: float, progress: TaskProgress | None) -> TaskResult:
        if r.status >= 300:
            raise BmcActionFailed(f"{self.base}: update refused: HTTP {r.status}: {error_message(r.text)}")
        task_uri = r.doc.get("@odata.id") if "TaskState" in r.doc else None
        task_uri = task_uri or r.headers.get("location")
        if not task_uri:
            return TaskResult(uri=None, state="Completed")
        return self.follow_task(str(task_uri), timeout, poll, progress)

    def follow_task(self, uri: str, timeout: float, poll: float = 5.0,
                    progress: TaskProgress | None = None) -> TaskResult:
        """Poll a Task (or its monitor) until a final TaskState, bounded by `timeout`."""
        path = uri.split("://", 1)[-1]
        path = path[path.index("/"):] if "://" in uri else uri
        deadline = time.monotonic() + timeout
        while True:
            doc = self.get(path)
            state, pct, msgs = quirks.task_state(doc)
            if progress is not None:
                progress(TaskResult(uri=path, state=state, percent=pct, messages=msgs))
            if state in quirks.TASK_DONE:
                return TaskResult(uri=path, state=state, percent=pct, messages=msgs)
            if time.monotonic() >= deadline:
                return TaskResult(uri=path, state="Timeout", percent=pct, messages=msgs)
            time.sleep(poll)
