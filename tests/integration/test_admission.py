"""Admission control on a real `dgxie serve` (issue 12, item 2), on SQLite and PostgreSQL.

The limits are made tiny through `api.*` and one request is stalled on a database lock
(tests.support.serve.hold_node_writes), so the gate is full without any timing: a saturated
server refuses at once with 503 + Retry-After (JSON `detail`), never a 500 after the pool's
timeout; and a request whose client hung up while queued is never run.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx

from tests.support.serve import Served, hold_node_writes, served

TINY = {"max_inflight": 1, "threads": 4, "queue": 1, "retry_after": 7}


def _enroll_in_background(srv: Served, hostname: str, mac: str) -> tuple[threading.Thread, list[int]]:
    status: list[int] = []

    def run() -> None:
        r = httpx.post(f"{srv.url}/api/v1/nodes", json={"hostname": hostname, "mac": mac}, headers=srv.auth,
                       timeout=60)
        status.append(r.status_code)

    t = threading.Thread(target=run)
    t.start()
    return t, status


def test_saturated_server_sheds_with_503_and_retry_after(tmp_path: Path, db_url: str) -> None:
    with served(tmp_path, db_url, api=TINY | {"queue_wait": 1.0}) as srv:
        with hold_node_writes(db_url):
            blocker, blocked = _enroll_in_background(srv, "blocker", "02:00:00:00:00:01")
            srv.wait_metric("dgxie_http_inflight", 1.0)  # the one slot is taken (stalled on the lock)
            queued: list[httpx.Response] = []
            waiter = threading.Thread(target=lambda: queued.append(
                httpx.get(f"{srv.url}/api/v1/nodes/blocker", headers=srv.auth, timeout=30)))
            waiter.start()
            srv.wait_metric("dgxie_http_queued", 1.0)  # the one queue place is taken
            refused = httpx.get(f"{srv.url}/api/v1/nodes", headers=srv.auth, timeout=30)
            waiter.join(30)
            for r in (refused, queued[0]):
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"] == "7"
                assert r.headers["content-type"] == "application/json"
                assert r.json() == {"detail": "server busy, retry later"}
            assert srv.metric('dgxie_http_shed_total{reason="queue full"}') == 1.0
            assert srv.metric('dgxie_http_shed_total{reason="wait"}') == 1.0
            assert httpx.get(f"{srv.url}/healthz", timeout=10).status_code == 200  # not gated
        blocker.join(60)
        assert blocked == [201]  # the stalled request finishes once the lock goes
        assert httpx.get(f"{srv.url}/api/v1/nodes/blocker", headers=srv.auth, timeout=10).status_code == 200
    assert "Traceback" not in srv.log.read_text()


def test_request_of_a_client_that_hung_up_is_not_run(tmp_path: Path, db_url: str) -> None:
    with served(tmp_path, db_url, api=TINY | {"queue_wait": 60.0}) as srv:
        with hold_node_writes(db_url):
            blocker, blocked = _enroll_in_background(srv, "blocker", "02:00:00:00:00:01")
            srv.wait_metric("dgxie_http_inflight", 1.0)
            body = b'{"hostname": "ghost", "mac": "02:00:00:00:00:02"}'
            with socket.create_connection(("127.0.0.1", srv.port)) as sock:
                sock.sendall(b"POST /api/v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Authorization: Bearer " + srv.token.encode() + b"\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                srv.wait_metric("dgxie_http_queued", 1.0)
            time.sleep(0.5)  # the server sees the hang-up while the request is still queued
        blocker.join(60)
        assert blocked == [201]
        srv.wait_metric("dgxie_http_client_gone_total", 1.0)
        assert httpx.get(f"{srv.url}/api/v1/nodes/ghost", headers=srv.auth, timeout=10).status_code == 404
        assert httpx.get(f"{srv.url}/api/v1/nodes/blocker", headers=srv.auth, timeout=10).status_code == 200
