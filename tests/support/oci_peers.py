"""Two small servers the OCI tests write themselves, because no packaged peer exists here:

- `TokenServer`: a stand-in for a registry token service such as NGC's (authn.nvidia.com). It
  accepts only Basic `$oauthtoken:<key>` and issues an RS256 JWT (the distribution "token
  authentication" format: `iss`, `aud`, `access` claims, `x5c` header) that the real
  `docker-registry`, configured with `auth: token: {realm, service, issuer, rootcertbundle}`,
  verifies against the self-signed certificate generated here with `cryptography`.
- `FaultProxy`: a fault injector in front of the real registry. It forwards requests, and on
  demand flips one byte of a blob body (`tamper`), stalls after N bytes (`stall`), drops the
  connection after N bytes once (`cut`), answers 503 once (`unavailable`) or 404 (`missing`); it records
  the Range headers clients send (`ranges`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class TokenServer:
    def __init__(self, tmp: Path, key: str, service: str = "dgxie-test-registry", issuer: str = "dgxie-test-issuer"):
        self.key_secret, self.service, self.issuer = key, service, issuer
        self.priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dgxie test token signer")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.priv.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.priv, hashes.SHA256()))
        self.cert_path = tmp / "token-signer.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                q = parse_qs(urlsplit(self.path).query)
                outer.requests.append(self.path)
                auth = self.headers.get("Authorization", "")
                ok = False
                if auth.startswith("Basic "):
                    user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                    ok = user == "$oauthtoken" and pw == outer.key_secret
                if not ok:
                    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
                    self.send_response(401)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                token = outer.issue(q.get("scope", []))
                body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def registry_auth(self) -> dict[str, object]:
        return {"token": {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                          "rootcertbundle": str(self.cert_path)}}

    def issue(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        claims = {"iss": self.issuer, "sub": "$oauthtoken", "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        sig = self.priv.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{_b64(sig)}"

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FaultProxy:
    """Forward to `upstream`; `tamper` digests get one byte flipped, `stall` digests stop after
    `stall[digest]` bytes until `release` is set."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.tamper: set[str] = set()
        self.stall: dict[str, int] = {}
        self.cut: dict[str, int] = {}  # digest -> bytes sent before dropping the connection (once)
        self.missing: set[str] = set()  # digests answered 404 BLOB_UNKNOWN
        self.unavailable: list[str] = []  # path substrings answered 503 once each
        self.ranges: list[tuple[str, str]] = []
        self.release = threading.Event()
        outer = self
        client = httpx.Client(timeout=30)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _forward(self) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                digest = self.path.split("?")[0].rsplit("/", 1)[-1] if "/blobs/" in self.path else ""
                if "Range" in self.headers:
                    outer.ranges.append((digest, self.headers["Range"]))
                hit = next((p for p in outer.unavailable if p in self.path), None)
                if hit is not None:
                    outer.unavailable.remove(hit)
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if digest in outer.missing:
                    body = b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}'
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                with client.stream(self.command, outer.upstream + self.path, headers=headers) as r:
                    body = b"" if self.command == "HEAD" else r.read()
                    self.send_response(r.status_code)
                    for k, v in r.headers.items():
                        if k.lower() not in ("transfer-encoding", "connection", "content-length", "content-encoding"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", r.headers.get("content-length", str(len(body)))
                                     if self.command == "HEAD" else str(len(body)))
                    self.end_headers()
                    if digest in outer.tamper and body:
                        body = bytes([body[0] ^ 0xFF]) + body[1:]
                    if digest in outer.cut and self.command == "GET":
                        self.wfile.write(body[: outer.cut.pop(digest)])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    if digest in outer.stall and self.command == "GET":
                        self.wfile.write(body[: outer.stall[digest]])
                        self.wfile.flush()
                        outer.release.wait(60)
                        self.close_connection = True
                        return
                    self.wfile.write(body)

            do_GET = do_HEAD = _forward

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._client = client

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._client.close()
