"""Bad BMCs never abort a scan: each failure is reported for its node only, and a failed node's
partial inventory is not stored as complete.

The misbehaving BMCs are a fault injector (a tiny HTTP server in this test, serving the real DGX
H100 capture except where it is told to break): no real peer returns HTML, truncated JSON, or
hangs on demand. The good node is a real sushy-static peer.
"""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dgxie.models import FirmwareReading, FirmwareScan
from tests.support.bmc import DGX_MOCKUP, INSECURE_HTTP, sushy_static


class Injector(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.mode = mode
        self.hits = 0


class Handler(http.server.BaseHTTPRequestHandler):
    server: Injector
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits += 1
        mode, path = self.server.mode, self.path.split("?", 1)[0].rstrip("/")
        if mode == "auth":
            return self._send(401, b'{"error": {"message": "bad credentials"}}')
        if mode == "html":
            return self._send(200, b"<!DOCTYPE html><html><body>Please log in</body></html>", "text/html")
        if mode == "slow":
            time.sleep(3)
        if mode == "flaky" and self.server.hits == 1:
            return self._send(503, b"")
        f = DGX_MOCKUP / path.removeprefix("/redfish/v1").lstrip("/") / "index.json"
        if not f.is_file():
            return self._send(404, b'{"error": {"message": "not found"}}')
        body = f.read_bytes()
        if mode == "truncated" and path.endswith("/PSU_3"):
            body = body[: len(body) // 2]  # a correct Content-Length, half a JSON document
        if mode == "cut" and path.endswith("/FirmwareInventory"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:100])  # then hang up mid-body
            self.close_connection = True
            return None
        return self._send(200, body)

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def injector(mode: str, tls: Path | None = None) -> Iterator[str]:
    srv = Injector(mode)
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls / "cert.pem", tls / "key.pem")
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="module")
def bmcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("bmc-faults")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
                   check=True, capture_output=True)
    with ExitStack() as st:
        out = {m: st.enter_context(injector(m)) for m in ("html", "truncated", "cut", "slow", "auth", "flaky")}
        out["good"] = st.enter_context(sushy_static(DGX_MOCKUP, tmp))
        out["selfsigned"] = st.enter_context(injector("ok", tls=tmp))
        plain = out["good"]
        out["tls"] = plain.replace("http://", "https://")  # TLS spoken to a plain-HTTP BMC
        with injector("ok") as closed:
            pass
        out["refused"] = closed  # nothing listens there any more
        yield out


def test_bad_bmcs_are_reported_per_node(cli: Any, config_file: Any, make_ctx: Any, bmcs: dict[str, str],
                                        tmp_path: Path) -> None:
    config_file(bmc={"timeout": 1.5, "retries": 1, "tls_verify": True} | INSECURE_HTTP)
    pw = tmp_path / "pw"
    pw.write_text("password")
    for i, name in enumerate(sorted(bmcs)):
        r = cli("node", "add", f"n-{name}", "--mac", f"aa:00:00:00:03:{i:02x}", "--bmc", bmcs[name],
                "--bmc-user", "admin", "--bmc-password-file", str(pw))
        assert r.code == 0, r.err
    t0 = time.monotonic()
    r = cli("firmware", "scan", "--all", "--json")
    assert r.code == 2, r.err  # some BMCs failed: the others are stored
    assert time.monotonic() - t0 < 30
    res = {x["node"].removeprefix("n-"): x for x in json.loads(r.out)}
    assert res["good"]["ok"] and res["good"]["components"] == 66
    assert res["flaky"]["ok"] and res["flaky"]["components"] == 66  # a 503 is retried with backoff
    want = {"html": ("protocol", "HTML instead of Redfish JSON"), "truncated": ("protocol", "truncated or invalid JSON"),
            "cut": ("protocol", "truncated"), "slow": ("timeout", "timed out"), "auth": ("auth", "credentials"),
            "refused": ("unreachable", "unreachable"), "tls": ("tls", "TLS error"),
            "selfsigned": ("tls", "CERTIFICATE_VERIFY_FAILED")}
    for name, (kind, text) in want.items():
        assert not res[name]["ok"], name
        assert res[name]["error_kind"] == kind, (name, res[name])
        assert text in res[name]["error"], (name, res[name]["error"])
        assert "password" not in res[name]["error"]

    ctx = make_ctx()
    with ctx.sessions() as s:
        # "truncated" read 65 of 66 components fine, but its scan is failed and stores none of them.
        for name in want:
            sc = s.scalars(select(FirmwareScan).where(FirmwareScan.hostname == f"n-{name}")).one()
            assert sc.status == "failed"
            assert s.scalar(select(func.count()).where(FirmwareReading.scan_id == sc.id)) == 0
    rows = json.loads(cli("firmware", "report", "--format", "json", "--node", "n-truncated").out)
    assert rows == [{"node": "n-truncated", "component": None, "installed": None, "required": None,
                     "status": "unknown", "platform": None, "endpoint": None, "scanned_at": None,
                     "hint": "no complete firmware scan yet"}]

    config_file(bmc={"timeout": 1.5, "retries": 0, "tls_verify": False} | INSECURE_HTTP)  # self-signed accepted when not verifying
    r = cli("firmware", "scan", "n-selfsigned", "--json")
    assert json.loads(r.out)[0]["ok"] is True
    assert r.code == 0
    r = cli("firmware", "scan", "n-refused", "n-selfsigned")
    assert r.code == 2 and "scanned 1 of 2 node(s); 1 failed" in r.err


def test_extra_endpoint_failure_fails_the_node(cli: Any, config_file: Any, bmcs: dict[str, str], tmp_path: Path) -> None:
    config_file(bmc=INSECURE_HTTP)
    assert cli("node", "add", "dgxh", "--mac", "aa:00:00:00:04:01", "--bmc", bmcs["good"]).code == 0
    r = cli("firmware", "endpoint", "add", "dgxh", "hgx", bmcs["html"])
    assert r.code == 0, r.err
    assert cli("firmware", "endpoint", "add", "dgxh", "hgx", bmcs["good"]).code == 1  # duplicate name
    assert cli("firmware", "endpoint", "add", "dgxh", "x", "ftp://nope").code == 1
    res = json.loads(cli("firmware", "scan", "dgxh", "--json").out)[0]
    assert not res["ok"] and res["error"].startswith("hgx: ")
    assert cli("firmware", "endpoint", "remove", "dgxh", "hgx").code == 0
    assert cli("firmware", "endpoint", "add", "dgxh", "hgx", bmcs["flaky"]).code == 0
    res = json.loads(cli("firmware", "scan", "dgxh", "--json").out)[0]
    assert res["ok"] and res["components"] == 132  # both endpoints' inventories
