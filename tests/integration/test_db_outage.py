"""A PostgreSQL outage under a real `dgxie serve` (issue 12, item 8): a private server is stopped
and started again under it. Every request meanwhile gets `503 {"detail": "database unavailable"}`
with Retry-After (never a 500, never a reset); the log gets one line for the outage and one for
the recovery, no traceback (a background poll failing meanwhile included); dgxie recovers by
itself."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support.pg_private import private_postgres
from tests.support.serve import served


def test_postgres_outage_is_503_logged_once_and_recovers(tmp_path: Path) -> None:
    with private_postgres() as pg, served(tmp_path, pg.url, handoff={"poll_seconds": 0.2},
                                          api={"retry_after": 3}) as srv:
        nodes = f"{srv.url}/api/v1/nodes"
        assert httpx.post(nodes, json={"hostname": "n1", "mac": "02:00:00:00:00:01"}, headers=srv.auth,
                          timeout=10).status_code == 201
        # the node readers now keep their connections (api.readers): the outage breaks them
        assert httpx.get(f"{nodes}/n1", headers=srv.auth, timeout=10).status_code == 200
        assert httpx.get(nodes, headers=srv.auth, timeout=10).status_code == 200
        pg.stop()
        answers = []
        for i in range(5):
            answers += [httpx.get(f"{nodes}/n1", headers=srv.auth, timeout=10),
                        httpx.get(nodes, headers=srv.auth, timeout=10),
                        httpx.post(nodes, json={"hostname": f"x{i}", "mac": f"02:00:00:00:01:0{i}"},
                                   headers=srv.auth, timeout=10),
                        httpx.patch(f"{nodes}/n1", json={"vars": {"k": i}}, headers=srv.auth, timeout=10)]
        for r in answers:
            assert r.status_code == 503, (r.request.method, r.request.url, r.text)
            assert r.json() == {"detail": "database unavailable"}
            assert r.headers["retry-after"] == "3"
        health = httpx.get(f"{srv.url}/healthz", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
        time.sleep(1)  # a few handoff polls fail meanwhile
        pg.start()
        deadline = time.monotonic() + 30
        while (r := httpx.get(f"{nodes}/n1", headers=srv.auth, timeout=10)).status_code != 200:
            assert r.status_code == 503 and time.monotonic() < deadline, r.text
            time.sleep(0.2)
        assert httpx.get(f"{srv.url}/healthz", timeout=10).status_code == 200
        assert httpx.post(nodes, json={"hostname": "n2", "mac": "02:00:00:00:00:02"}, headers=srv.auth,
                          timeout=10).status_code == 201
    log = srv.log.read_text()
    assert log.count("database unavailable:") == 1, log
    assert log.count("database available again") == 1, log
    assert "Traceback" not in log and " 500 " not in log, log
