"""Admission control on a real `dgxie serve` (issue 12, item 2), on SQLite and PostgreSQL.

The limits are made tiny through `api.*` and one request is stalled on a database lock
(tests.support.serve.hold_node_writes), so the gate is full without any timing: a saturated
server refuses at once with 503 + Retry-After (JSON `detail`), never a 500 after the pool's
timeout; and a request whose client hung up while queued is never run. A `POST /api/v1/nodes`
waiting for the enrolment batcher's writer holds no slot: more wait than the gate admits, and
they are written together.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.serve import Served, hold_node_writes, served

TINY = {"max_inflight": 1, "threads": 4, "queue": 1, "retry_after": 7}


def _in_background(srv: Served, method: str, path: str, body: dict[str, Any]) -> tuple[threading.Thread, list[int]]:
    status: list[int] = []

    def run() -> None:
        r = httpx.request(method, f"{srv.url}{path}", json=body, headers=srv.auth, timeout=60)
        status.append(r.status_code)

    t = threading.Thread(target=run)
    t.start()
    return t, status


def _blocker(srv: Served) -> None:
    """Node `blocker`, enrolled before the lock: a PATCH of it then holds the one slot, stalled."""
    r = httpx.post(f"{srv.url}/api/v1/nodes", json={"hostname": "blocker", "mac": "02:00:00:00:00:01"},
                   headers=srv.auth, timeout=30)
    assert r.status_code == 201, r.text


def test_saturated_server_sheds_with_503_and_retry_after(tmp_path: Path, db_url: str) -> None:
    with served(tmp_path, db_url, api=TINY | {"queue_wait": 1.0}) as srv:
        _blocker(srv)
        with hold_node_writes(db_url):
            blocker, blocked = _in_background(srv, "PATCH", "/api/v1/nodes/blocker", {"tags": ["held"]})
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
        assert blocked == [200]  # the stalled request finishes once the lock goes
        assert httpx.get(f"{srv.url}/api/v1/nodes/blocker", headers=srv.auth, timeout=10).status_code == 200
    assert "Traceback" not in srv.log.read_text()


def test_request_of_a_client_that_hung_up_is_not_run(tmp_path: Path, db_url: str) -> None:
    with served(tmp_path, db_url, api=TINY | {"queue_wait": 60.0}) as srv:
        _blocker(srv)
        with hold_node_writes(db_url):
            blocker, blocked = _in_background(srv, "PATCH", "/api/v1/nodes/blocker", {"tags": ["held"]})
            srv.wait_metric("dgxie_http_inflight", 1.0)
            body = b'{"hostname": "ghost", "mac": "02:00:00:00:00:02"}'
            with socket.create_connection(("127.0.0.1", srv.port)) as sock:
                sock.sendall(b"POST /api/v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Authorization: Bearer " + srv.token.encode() + b"\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                srv.wait_metric("dgxie_http_queued", 1.0)
            time.sleep(0.5)  # the server sees the hang-up while the request is still queued
        blocker.join(60)
        assert blocked == [200]
        srv.wait_metric("dgxie_http_client_gone_total", 1.0)
        assert httpx.get(f"{srv.url}/api/v1/nodes/ghost", headers=srv.auth, timeout=10).status_code == 404
        assert httpx.get(f"{srv.url}/api/v1/nodes/blocker", headers=srv.auth, timeout=10).status_code == 200


def test_enrolments_waiting_for_the_batch_writer_hold_no_slot(tmp_path: Path, db_url: str) -> None:
    """One slot, one queue place: the first POST's batch stalls on the lock; three more wait for
    the writer with their slots given back (through the gate, none refused), a read is still
    admitted, and the three are then written as one batch (one transaction: one `created_at`)."""
    with served(tmp_path, db_url, api=TINY | {"queue_wait": 1.0}) as srv:
        _blocker(srv)  # the token is looked up (and cached) before the lock
        with hold_node_writes(db_url):
            first = _in_background(srv, "POST", "/api/v1/nodes", {"hostname": "first", "mac": "02:00:00:00:01:00"})
            srv.wait_metric("dgxie_enroll_writing", 1.0)  # its batch is stalled on the lock
            later = []
            for i in range(3):
                later.append(_in_background(srv, "POST", "/api/v1/nodes",
                                            {"hostname": f"later{i}", "mac": f"02:00:00:00:02:0{i}"}))
                srv.wait_metric("dgxie_enroll_waiting", float(i + 1))  # waiting, its slot given back
            assert srv.metric("dgxie_http_inflight") == 0.0
            r = httpx.get(f"{srv.url}/api/v1/tokens/self", headers=srv.auth, timeout=10)
            assert r.status_code == 200, r.text  # admitted: the waiting enrolments hold no slot
        for t, status in [first, *later]:
            t.join(60)
            assert status == [201]
        srv.wait_metric("dgxie_enroll_batch_rows_total", 5.0)  # with the blocker's
        assert srv.metric("dgxie_enroll_batches_total") == 3.0
        assert srv.metric('dgxie_http_shed_total{reason="queue full"}') == 0.0
        made = {h: httpx.get(f"{srv.url}/api/v1/nodes/{h}", headers=srv.auth, timeout=10).json()["created_at"]
                for h in ("first", "later0", "later1", "later2")}
        assert made["later0"] == made["later1"] == made["later2"] != made["first"]
    assert "Traceback" not in srv.log.read_text()
