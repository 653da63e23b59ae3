"""A FAKE Redfish BMC for every simulated node (no real peer can run thousands of BMCs here).

One asyncio server on 0.0.0.0:8000 in the client namespace; node i's BMC is `bmc_ip(i)` (an
AnyIP address, netns.BMC_NET); the server knows which node was asked by the local address
the connection reached. HTTP basic auth (`USER`/`PASSWORD`) on everything. Enough Redfish for
dgxie's driver (dgxie/bmc/redfish.py, redfish_auth.py): the service root, no SessionService
(404 on the login POST, so the driver uses basic auth, checked with a GET of the session
collection), the Systems collection, System `1` with a Model, PowerState, Boot (PATCH, ETag) and
the ComputerSystem.Reset action, and a second System without a Model, as a DGX H100 has (with one
member only, dgxie's driver fails: zip(strict=True) over [] in `RedfishClient._system`, reported).
A Reset to `On`/`ForceOn`/`ForceRestart`/`PowerCycle` calls `on_power(i)` (the simulator starts
that node).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

USER, PASSWORD = "admin", "storm-sim"
PORT = 8000
SYS = "/redfish/v1/Systems/1"
BASEBOARD = "/redfish/v1/Systems/HGX_Baseboard_0"
RESET = f"{SYS}/Actions/ComputerSystem.Reset"
_AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def bmc_ip(i: int) -> str:
    n = i + 1
    return f"10.250.{n >> 8}.{n & 255}"


def bmc_index(ip: str) -> int:
    _, _, a, b = (int(x) for x in ip.split("."))
    return (a << 8 | b) - 1


class FakeBmcs:
    """The fake BMCs of `count` nodes; `power[i]` is "Off" until a Reset turns node i on."""

    def __init__(self, count: int, on_power: Callable[[int], None]) -> None:
        self.power = ["Off"] * count
        self.boot: list[dict[str, Any]] = [{"BootSourceOverrideTarget": "None",
                                            "BootSourceOverrideEnabled": "Disabled"} for _ in range(count)]
        self.on_power = on_power
        self.requests = 0

    async def serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._conn, "0.0.0.0", PORT, backlog=4096)

    async def _conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        i = bmc_index(w.get_extra_info("sockname")[0])
        try:
            for _ in range(1000):  # keep-alive, bounded
                line = await asyncio.wait_for(r.readline(), 30)
                if not line:
                    return
                method, path = line.decode().split()[:2]
                headers: dict[str, str] = {}
                while (h := await r.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await r.readexactly(int(headers.get("content-length", "0")))
                self.requests += 1
                status, doc, extra = self._answer(i, method, path.split("?")[0], headers, body)
                data = json.dumps(doc).encode() if doc is not None else b""
                head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(data)}\r\nOData-Version: 4.0\r\n"
                if data:
                    head += "Content-Type: application/json\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                w.write(head.encode() + b"\r\n" + data)
                await w.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError):
            return
        finally:
            w.close()

    def _system(self, i: int) -> dict[str, Any]:
        return {"@odata.id": SYS, "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem", "Id": "1",
                "Name": f"storm-sim node {i}", "Model": "storm-sim fake", "PowerState": self.power[i],
                "Boot": self.boot[i], "Actions": {"#ComputerSystem.Reset": {
                    "target": RESET, "ResetType@Redfish.AllowableValues":
                        ["On", "ForceOff", "GracefulShutdown", "ForceRestart", "PowerCycle"]}}}

    def _answer(self, i: int, method: str, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, Any, dict[str, str]]:
        path = path.rstrip("/") or "/"
        if path in ("/redfish/v1", "/redfish"):
            return 200, {"@odata.id": "/redfish/v1", "RedfishVersion": "1.11.0", "Name": "storm-sim fake BMC",
                         "Systems": {"@odata.id": "/redfish/v1/Systems"}}, {}
        if path == "/redfish/v1/SessionService/Sessions" and method == "POST":
            return 404, {"error": {"message": "no SessionService: use basic auth"}}, {}
        if headers.get("authorization") != _AUTH:
            return 401, {"error": {"message": "unauthorized"}}, {"WWW-Authenticate": 'Basic realm="bmc"'}
        etag = f'"{i}-{self.power[i]}-{self.boot[i]["BootSourceOverrideTarget"]}"'
        if path == "/redfish/v1/SessionService/Sessions":
            return 200, {"Members": [], "Members@odata.count": 0}, {}
        if path == "/redfish/v1/Systems" and method == "GET":  # as a DGX H100: the host, and a baseboard
            return 200, {"Members": [{"@odata.id": SYS}, {"@odata.id": BASEBOARD}], "Members@odata.count": 2}, {}
        if path == BASEBOARD and method == "GET":
            return 200, {"@odata.id": BASEBOARD, "Id": "HGX_Baseboard_0", "Name": "baseboard (no Model)"}, {}
        if path == SYS and method == "GET":
            return 200, self._system(i), {"ETag": etag}
        if path == SYS and method == "PATCH":
            boot = (json.loads(body or b"{}").get("Boot") or {})
            self.boot[i] |= {k: v for k, v in boot.items() if isinstance(v, str)}
            return 204, None, {}
        if path == RESET and method == "POST":
            kind = json.loads(body or b"{}").get("ResetType")
            if kind in ("ForceOff", "GracefulShutdown"):
                self.power[i] = "Off"
            elif kind in ("On", "ForceOn", "ForceRestart", "PowerCycle", "GracefulRestart"):
                was = self.power[i]
                self.power[i] = "On"
                if was == "Off" or kind != "On":
                    self.on_power(i)
            else:
                return 400, {"error": {"message": f"ResetType {kind!r} not allowed"}}, {}
            return 204, None, {}
        return 404, {"error": {"message": f"{method} {path}: not found"}}, {}
