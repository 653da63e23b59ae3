"""The app starts on both databases, /healthz answers, and a node can be enrolled and read back."""

from __future__ import annotations


def test_healthz_and_enroll(client, auth) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    r = client.post("/api/v1/nodes", json={"hostname": "dgx01", "mac": "AA-BB-CC-00-00-01"}, headers=auth("operator"))
    assert r.status_code == 201, r.text
    assert r.json()["mac"] == "aa:bb:cc:00:00:01"
    assert client.get("/api/v1/nodes/dgx01", headers=auth("viewer")).json()["state"] == "enrolled"


def test_cli_add_and_list(cli) -> None:
    r = cli("node", "add", "dgx02", "--mac", "aabb.cc00.0002", "--json")
    assert r.code == 0, r.err
    r = cli("node", "list", "--json")
    assert '"dgx02"' in r.out
