"""A Redfish BMC that hands out session tokens, over the real DGX H100 capture.

None of the real peers here gives a session token (sushy-static answers every POST with 204 and
no body, sushy-emulator has no SessionService), so this small peer of our own serves the DGX H100
capture (tests/support/bmc.py `DGX_MOCKUP`) as a token-granting BMC does (DSP0266 13.3.4): a login
POST to /redfish/v1/SessionService/Sessions answers 201 with `X-Auth-Token` and `Location`, and
every other request but the service root needs that token (`basic=False`: HTTP basic auth is
refused with 401, so a client that falls back to it fails). `expire()` forgets every token, as
a BMC does after its SessionTimeout. ComputerSystem.Reset changes PowerState (ResetTypes checked
against the capture's ResetActionInfo) and a PATCH of Boot is kept, so reads show the effect.
`requests` records (method, path, how it authenticated) for the tests; `reset_status` makes every
Reset fail with that status.
"""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.bmc import DGX_MOCKUP

R = "/redfish/v1"
SESSIONS = f"{R}/SessionService/Sessions"
AFTER = {"On": "On", "ForceOn": "On", "ForceOff": "Off", "GracefulShutdown": "Off", "ForceRestart": "On",
         "GracefulRestart": "On", "PowerCycle": "On"}


class SessionBmc(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, user: str, password: str, basic: bool, reset_status: int | None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.user, self.password, self.basic, self.reset_status = user, password, basic, reset_status
        self.tokens: set[str] = set()
        self.systems: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def expire(self) -> None:
        with self.lock:
            self.tokens.clear()

    def doc(self, path: str) -> dict[str, Any] | None:
        if path in self.systems:
            return self.systems[path]
        f = DGX_MOCKUP / path.removeprefix(R).lstrip("/") / "index.json"
        if not f.is_file():
            return None
        doc: dict[str, Any] = json.loads(f.read_text())
        if doc.get("@odata.type", "").startswith("#ComputerSystem."):
            self.systems[path] = doc
        return doc


class Handler(http.server.BaseHTTPRequestHandler):
    server: SessionBmc
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _auth(self) -> str:
        token = self.headers.get("X-Auth-Token")
        if token is not None:
            return "token" if token in self.server.tokens else "bad-token"
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            user, _, pw = base64.b64decode(basic[6:]).decode().partition(":")
            ok = (user, pw) == (self.server.user, self.server.password)
            return "basic" if ok and self.server.basic else "bad-basic"
        return "none"

    def _body(self) -> dict[str, Any]:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        doc = json.loads(raw or b"{}")
        return doc if isinstance(doc, dict) else {}

    def _send(self, status: int, doc: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc).encode() if doc is not None else b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if doc is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        body = self._body() if method != "GET" else {}
        with self.server.lock:
            how = self._auth()
            self.server.requests.append((method, path, how))
            if method == "POST" and path == SESSIONS:
                if (body.get("UserName"), body.get("Password")) != (self.server.user, self.server.password):
                    return self._send(401, {"error": {"message": "Invalid username or password"}})
                sid, token = secrets.token_hex(16), secrets.token_hex(16)
                self.server.tokens.add(token)
                return self._send(201, {"@odata.id": f"{SESSIONS}/{sid}", "Id": sid, "UserName": body["UserName"]},
                                  {"X-Auth-Token": token, "Location": f"{SESSIONS}/{sid}"})
            if path != R and how not in ("token", "basic"):
                return self._send(401, {"error": {"message": "authentication required"}})
            doc = self.server.doc(path.removesuffix("/Actions/ComputerSystem.Reset"))
            if doc is None:
                return self._send(404, {"error": {"message": "not found"}})
            if method == "GET":
                return self._send(200, doc)
            if method == "POST" and path.endswith("/Actions/ComputerSystem.Reset"):
                info = self.server.doc(f"{path.removesuffix('/Actions/ComputerSystem.Reset')}/ResetActionInfo") or {}
                allowed = next((p.get("AllowableValues") for p in info.get("Parameters", [])), list(AFTER))
                if self.server.reset_status is not None:
                    return self._send(self.server.reset_status, {"error": {"message": "Reset failed\n(injected)"}})
                if body.get("ResetType") not in allowed:
                    return self._send(400, {"error": {"message": f"ResetType {body.get('ResetType')} not allowed"}})
                doc["PowerState"] = AFTER[body["ResetType"]]
                return self._send(204)
            if method == "PATCH" and "Boot" in body:
                doc["Boot"] = {**doc.get("Boot", {}), **body["Boot"]}
                return self._send(204)
            return self._send(405, {"error": {"message": f"{method} not allowed here"}})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


@contextmanager
def session_bmc(user: str = "admin", password: str = "password", basic: bool = False,
                reset_status: int | None = None) -> Iterator[SessionBmc]:
    """The peer on a free loopback port; `srv.url` is its http:// base URL. `reset_status`: every
    Reset fails with that HTTP status (a two-line Redfish error message)."""
    srv = SessionBmc(user, password, basic, reset_status)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
