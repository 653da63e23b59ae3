"""The write-only BMC password stays with the BMC it was given for (issue 12, item 3).

The "BMC" here is a loopback listener that records every request it gets (headers and body) and
answers like a Redfish service that refuses every login: whatever credentials dgxie sends, it
sends them here, and the test reads them back. A positive control (a new password given with the
new URL) shows that the listener does see credentials when dgxie sends them.
"""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from dgxie.app import create_app
from dgxie.models import Event
from tests.support.bmc import INSECURE_HTTP

SECRET = "s3cret-bmc-pw-1"
ROOT = (b'{"@odata.id": "/redfish/v1", "RedfishVersion": "1.6.0", "SessionService": {"@odata.id":'
        b' "/redfish/v1/SessionService"}, "Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}}')


class Recorder(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[str] = []  # each request: request line, headers, body; Basic credentials decoded

    def leaked(self, secret: str) -> bool:
        return any(secret in r for r in self.seen)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Recorder
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            auth += " " + base64.b64decode(auth[6:]).decode("utf-8", "replace")
        self.server.seen.append(f"{self.requestline}\n{self.headers}\n{auth}\n{body}")
        status, out = (200, ROOT) if self.command == "GET" and self.path.rstrip("/") == "/redfish/v1" and \
            not self.headers.get("Authorization") else (401, b'{"error": {"message": "no"}}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PATCH = do_DELETE = _any


@contextmanager
def recorder(tls: Path | None = None) -> Iterator[tuple[str, Recorder]]:
    srv = Recorder()
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls / "cert.pem", tls / "key.pem")
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{srv.server_address[1]}", srv
    finally:
        srv.shutdown()
        srv.server_close()


def _node(client: TestClient, auth: Any, hostname: str, bmc: dict[str, Any]) -> Any:
    return client.post("/api/v1/nodes", headers=auth("operator"), json={
        "hostname": hostname, "mac": f"02:00:00:00:0c:{len(hostname):02x}", "bmc": bmc})


def _dropped(ctx: Any, hostname: str) -> list[Event]:
    with ctx.sessions() as s:
        return list(s.scalars(select(Event).where(Event.hostname == hostname, Event.kind == "node.bmc.password_dropped")))


def test_changing_the_bmc_url_does_not_send_the_stored_password_there(make_ctx: Any, auth: Any) -> None:
    ctx = make_ctx(bmc=INSECURE_HTTP | {"retries": 0, "timeout": 3})
    with TestClient(create_app(ctx)) as client, recorder() as (evil, rec):
        r = _node(client, auth, "victim", {"url": "https://10.0.1.11", "username": "admin", "password": SECRET})
        assert r.status_code == 201 and r.json()["bmc"]["password_set"] is True
        r = client.patch("/api/v1/nodes/victim", headers=auth("operator"), json={"bmc": {"url": evil}})
        assert r.status_code == 200, r.text
        assert r.json()["bmc"] == {"url": evil, "username": "admin", "password_set": False}
        assert client.get("/api/v1/nodes/victim/power", headers=auth("viewer")).status_code == 503
        assert rec.seen, "dgxie never reached the new BMC: the check below would prove nothing"
        assert not rec.leaked(SECRET)
        [ev] = _dropped(ctx, "victim")
        assert ev.actor and ev.data == {"because": ["url"]} and SECRET not in ev.reason

        # the positive control: a password given with the URL goes there, as it should
        r = client.patch("/api/v1/nodes/victim", headers=auth("operator"),
                         json={"bmc": {"url": evil + "/redfish/v1/Systems/1", "password": "new-pw-2"}})
        assert r.json()["bmc"]["password_set"] is True
        client.get("/api/v1/nodes/victim/power", headers=auth("viewer"))
        assert rec.leaked("new-pw-2")
        # a path on the same host (another system of one service) keeps it; a new user name does not
        r = client.patch("/api/v1/nodes/victim", headers=auth("operator"), json={"bmc": {"url": evil}})
        assert r.json()["bmc"]["password_set"] is True
        r = client.patch("/api/v1/nodes/victim", headers=auth("operator"), json={"bmc": {"username": "root"}})
        assert r.json()["bmc"]["password_set"] is False
        assert [e.data["because"] for e in _dropped(ctx, "victim")] == [["url"], ["username"]]


def test_plain_http_bmc_urls_are_refused_unless_the_site_allows_them(make_ctx: Any, auth: Any, cli: Any,
                                                                     tmp_path: Path) -> None:
    with recorder() as (plain, rec):
        with TestClient(create_app(make_ctx(bmc=INSECURE_HTTP))) as client:
            assert _node(client, auth, "legacy", {"url": plain, "username": "admin", "password": SECRET}).status_code == 201
        with TestClient(create_app(make_ctx())) as client:
            for url in (plain, "redfish+http://10.0.1.12"):
                r = _node(client, auth, "plain", {"url": url, "username": "admin", "password": SECRET})
                assert r.status_code == 422 and "bmc.allow_insecure_http" in r.json()["detail"], r.text
            assert client.get("/api/v1/nodes/plain", headers=auth("viewer")).status_code == 404
            r = client.patch("/api/v1/nodes/legacy", headers=auth("operator"), json={"bmc": {"url": plain + "/x"}})
            assert r.status_code == 422
            # a URL stored while the site allowed it is not used once it does not
            r = client.get("/api/v1/nodes/legacy/power", headers=auth("viewer"))
            assert r.status_code == 503 and "allow_insecure_http" in r.json()["detail"]
            assert rec.seen == [] and not rec.leaked(SECRET)
            # IPMI (RMCP+ lanplus: the password is not sent) is its own scheme, accepted
            assert _node(client, auth, "ipmi", {"url": "ipmi://10.0.1.13", "password": SECRET}).status_code == 201
    pw = tmp_path / "pw"
    pw.write_text(SECRET)
    r = cli("node", "add", "plaincli", "--mac", "02:00:00:00:0d:01", "--bmc", "http://10.0.1.14",
            "--bmc-password-file", str(pw))
    assert r.code == 1 and r.err.count("\n") == 1 and "allow_insecure_http" in r.err and SECRET not in r.err
    assert cli("node", "show", "plaincli").code == 1


def test_bmc_certificates_are_verified_by_default(make_ctx: Any, auth: Any, tmp_path: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    with recorder(tls=tmp_path) as (url, rec), TestClient(create_app(make_ctx(bmc={"retries": 0}))) as client:
        assert _node(client, auth, "selfsigned", {"url": url, "username": "admin", "password": SECRET}).status_code == 201
        r = client.get("/api/v1/nodes/selfsigned/power", headers=auth("viewer"))
        assert r.status_code == 503 and "BMC tls" in r.json()["detail"], r.text
        assert rec.seen == []  # the handshake failed: nothing, credentials least of all, was sent


def test_extra_endpoints_inherit_the_password_only_on_the_bmcs_own_host(make_ctx: Any) -> None:
    from dgxie.firmware.service import endpoints
    from dgxie.models import BmcEndpoint, Node

    site = make_ctx().site
    node = Node(hostname="dgx", bmc_url="https://10.0.1.5", bmc_username="admin", bmc_password_enc=site.box.seal(SECRET))
    extra = [BmcEndpoint(name="hgx", url="https://10.0.1.5:8443"), BmcEndpoint(name="far", url="https://10.0.9.9"),
             BmcEndpoint(name="own", url="https://10.0.9.9", username="u", password_enc=site.box.seal("own-pw"))]
    got = {e.name: (e.username, e.password) for e in endpoints(site, node, extra)}
    assert got == {"bmc": ("admin", SECRET), "hgx": ("admin", SECRET), "far": ("admin", None), "own": ("u", "own-pw")}


def test_cli_node_set_says_the_password_was_dropped(cli: Any, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(SECRET)
    assert cli("node", "add", "c1", "--mac", "02:00:00:00:0f:01", "--bmc", "https://10.0.1.21", "--bmc-user", "admin",
               "--bmc-password-file", str(pw)).code == 0
    r = cli("node", "set", "c1", "--bmc", "https://10.0.1.99")
    assert r.code == 0 and "stored password was dropped" in r.err and SECRET not in r.err, r.err
    r = cli("node", "set", "c1", "--bmc", "https://10.0.1.21", "--bmc-password-file", str(pw))
    assert r.code == 0 and "dropped" not in r.err
    assert json.loads(cli("node", "show", "c1", "--json").out)["bmc"]["password_set"] is True
