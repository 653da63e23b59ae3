"""Admin API for nodes on SQLite and PostgreSQL: CRUD, filters, pagination, and every bad input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from dgxie.models import Event, Node


def _add(client: Any, auth: Any, **body: Any) -> Any:
    return client.post("/api/v1/nodes", json=body, headers=auth("operator"))


def test_crud_roundtrip(client, auth) -> None:
    r = _add(client, auth, hostname="DGX01", mac="aabb.cc00.0001", ip="10.0.0.11", tags=["rack1", "h100"],
             interfaces=[{"mac": "AA-BB-CC-00-01-01", "name": "ib0"}],
             bmc={"url": "https://10.0.1.11", "username": "admin", "password": "s3cret-pw"}, facts={"gpus": 8})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["hostname"] == "dgx01" and body["mac"] == "aa:bb:cc:00:00:01"
    assert body["interfaces"][1] == {"mac": "aa:bb:cc:00:01:01", "name": "ib0"}
    assert body["bmc"] == {"url": "https://10.0.1.11", "username": "admin", "password_set": True}
    assert "s3cret-pw" not in r.text
    assert body["tags"] == ["h100", "rack1"] and body["facts"] == {"gpus": 8} and body["state"] == "enrolled"
    # by MAC in any spelling
    assert client.get("/api/v1/nodes/AA:BB:CC:00:01:01", headers=auth("viewer")).json()["hostname"] == "dgx01"
    r = client.patch("/api/v1/nodes/dgx01", json={"ip": "10.0.0.12", "tags": ["rack2"]}, headers=auth("operator"))
    assert r.status_code == 200 and r.json()["ip"] == "10.0.0.12" and r.json()["tags"] == ["rack2"]
    r = client.patch("/api/v1/nodes/dgx01", json={"ip": None}, headers=auth("operator"))
    assert r.json()["ip"] is None
    evs = client.get("/api/v1/nodes/dgx01/events", headers=auth("viewer")).json()
    assert [e["kind"] for e in evs] == ["node.create", "node.update", "node.update"]
    assert all(e["actor"].startswith("token:t-operator") for e in evs)
    assert client.delete("/api/v1/nodes/dgx01", headers=auth("operator")).status_code == 204
    assert client.get("/api/v1/nodes/dgx01", headers=auth("viewer")).status_code == 404


def test_password_encrypted_at_rest_and_never_returned(client, auth, ctx) -> None:
    _add(client, auth, hostname="n1", mac="02:00:00:00:00:01", bmc={"url": "https://bmc1", "password": "hunter2-xyz"})
    with ctx.sessions() as s:
        node = s.scalar(select(Node).where(Node.hostname == "n1"))
        assert node is not None and node.bmc_password_enc is not None
        assert b"hunter2-xyz" not in node.bmc_password_enc
        assert ctx.site.box.open(node.bmc_password_enc) == "hunter2-xyz"
        assert all("hunter2" not in str(e.data) + e.reason for e in s.scalars(select(Event)))
    for path in ("/api/v1/nodes", "/api/v1/nodes/n1", "/api/v1/nodes/n1/events"):
        assert "hunter2" not in client.get(path, headers=auth("viewer")).text
    key = ctx.site.data_dir / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_filters_and_pagination(client, auth) -> None:
    for i in range(25):
        r = _add(client, auth, hostname=f"gpu{i:02d}", mac=f"02:00:00:00:01:{i:02x}",
                 tags=["even" if i % 2 == 0 else "odd", "all"], role="k8s-worker" if i < 10 else "slurmd")
        assert r.status_code == 201, r.text
    h = auth("viewer")
    page = client.get("/api/v1/nodes?limit=10&offset=20", headers=h).json()
    assert page["total"] == 25 and [n["hostname"] for n in page["items"]] == [f"gpu{i:02d}" for i in range(20, 25)]
    assert client.get("/api/v1/nodes?role=k8s-worker", headers=h).json()["total"] == 10
    assert client.get("/api/v1/nodes?tag=even", headers=h).json()["total"] == 13
    assert client.get("/api/v1/nodes?tag=even&role=slurmd", headers=h).json()["total"] == 8
    assert client.get("/api/v1/nodes?tag=nope", headers=h).json()["total"] == 0
    assert client.get("/api/v1/nodes?state=enrolled", headers=h).json()["total"] == 25
    assert client.get("/api/v1/nodes?state=bogus", headers=h).status_code == 422
    assert client.get("/api/v1/nodes?limit=0", headers=h).status_code == 422
    assert client.get("/api/v1/nodes?limit=5000", headers=h).status_code == 422


@pytest.mark.parametrize("mac", ["aa:bb:cc:dd:ee", "gg:bb:cc:dd:ee:ff", "aabb.ccdd", "01:00:5e:00:00:01", "", "aa:bb:cc:dd:ee:ff:00"])
def test_malformed_mac(client, auth, mac: str) -> None:
    r = _add(client, auth, hostname="x1", mac=mac)
    assert r.status_code == 422 and "mac" in r.text


def test_duplicates_name_the_holder(client, auth) -> None:
    assert _add(client, auth, hostname="a1", mac="02:00:00:00:00:0a", ip="10.0.0.5").status_code == 201
    r = _add(client, auth, hostname="a1", mac="02:00:00:00:00:0b")
    assert r.status_code == 409 and "a1" in r.json()["detail"]
    r = _add(client, auth, hostname="a2", mac="02-00-00-00-00-0A")
    assert r.status_code == 409 and r.json()["detail"] == "MAC 02:00:00:00:00:0a belongs to node a1"
    r = _add(client, auth, hostname="a2", mac="02:00:00:00:00:0b", ip="10.0.0.5")
    assert r.status_code == 409 and r.json()["detail"] == "IP 10.0.0.5 belongs to node a1"
    r = _add(client, auth, hostname="a2", mac="02:00:00:00:00:0b", interfaces=[{"mac": "02:00:00:00:00:0a"}])
    assert r.status_code == 409
    assert _add(client, auth, hostname="a2", mac="02:00:00:00:00:0b").status_code == 201
    r = client.patch("/api/v1/nodes/a2", json={"hostname": "a1"}, headers=auth("operator"))
    assert r.status_code == 409
    r = client.patch("/api/v1/nodes/a2", json={"mac": "02:00:00:00:00:0a"}, headers=auth("operator"))
    assert r.status_code == 409 and "a1" in r.json()["detail"]
    assert client.get("/api/v1/nodes", headers=auth("viewer")).json()["total"] == 2


def test_ip_outside_subnets_and_unknown_refs(make_ctx, auth) -> None:
    from fastapi.testclient import TestClient

    from dgxie.app import create_app
    from dgxie.sections import DhcpConfig, SubnetConfig

    ctx = make_ctx(dhcp=DhcpConfig(subnets=[SubnetConfig(cidr="10.0.0.0/24")]))
    from tests.conftest import _token

    h = {"Authorization": f"Bearer {_token(ctx, 'admin')}"}
    with TestClient(create_app(ctx)) as c:
        r = c.post("/api/v1/nodes", json={"hostname": "z", "mac": "02:00:00:00:00:01", "ip": "10.9.9.9"}, headers=h)
        assert r.status_code == 422 and "outside every configured subnet (10.0.0.0/24)" in r.json()["detail"]
        r = c.post("/api/v1/nodes", json={"hostname": "z", "mac": "02:00:00:00:00:01", "ip": "10.0.0.300"}, headers=h)
        assert r.status_code == 422
        r = c.post("/api/v1/nodes", json={"hostname": "z", "mac": "02:00:00:00:00:01", "profile": "nope"}, headers=h)
        assert r.status_code == 422 and r.json()["detail"] == "unknown profile 'nope'"
        r = c.post("/api/v1/nodes", json={"hostname": "z", "mac": "02:00:00:00:00:01", "role": "nope"}, headers=h)
        assert r.status_code == 422 and "unknown role" in r.json()["detail"]
        r = c.post("/api/v1/nodes", json={"hostname": "bad_name!", "mac": "02:00:00:00:00:01"}, headers=h)
        assert r.status_code == 422
        r = c.post("/api/v1/nodes", json={"hostname": "z", "mac": "02:00:00:00:00:01", "state": "ready"}, headers=h)
        assert r.status_code == 422
        assert c.get("/api/v1/nodes", headers=h).json()["total"] == 0


def test_bodies_that_are_not_json_or_too_big(client, auth) -> None:
    h = auth("operator") | {"content-type": "application/json"}
    r = client.post("/api/v1/nodes", content=b"{not json", headers=h)
    assert r.status_code == 422 and "detail" in r.json()
    r = client.post("/api/v1/nodes", content=b"[1,2]", headers=h)
    assert r.status_code == 422
    r = client.post("/api/v1/nodes", content=b"x" * (2 << 20), headers=h)
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    r = client.post("/api/v1/nodes", json={"hostname": "q", "mac": "02:00:00:00:00:01", "extra": 1}, headers=auth("operator"))
    assert r.status_code == 422
    assert client.get("/api/v1/nodes", headers=auth("viewer")).json()["total"] == 0


def test_auth_roles(client, auth) -> None:
    assert client.get("/api/v1/nodes").status_code == 401
    assert client.get("/api/v1/nodes", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/v1/nodes", headers={"Authorization": "Basic Zm9vOmJhcg=="}).status_code == 401
    r = _add(client, auth, hostname="v", mac="02:00:00:00:00:01")
    assert r.status_code == 201
    r = client.post("/api/v1/nodes", json={"hostname": "w", "mac": "02:00:00:00:00:02"}, headers=auth("viewer"))
    assert r.status_code == 403 and "viewer" in r.json()["detail"]
    assert client.delete("/api/v1/nodes/v", headers=auth("viewer")).status_code == 403
    assert client.post("/api/v1/profiles", json={"name": "p"}, headers=auth("operator")).status_code == 403
    assert client.get("/api/v1/tokens", headers=auth("operator")).status_code == 403
    assert client.get("/api/v1/tokens", headers=auth("admin")).status_code == 200
