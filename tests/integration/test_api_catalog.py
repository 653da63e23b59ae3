"""Profiles, images and tokens through the admin API; /healthz and /metrics."""

from __future__ import annotations

from sqlalchemy import select

from dgxie.models import ApiToken


def test_images_and_profiles(client, auth) -> None:
    a = auth("admin")
    r = client.post("/api/v1/images", json={"name": "ubuntu-24.04", "kernel": "vmlinuz", "initrd": "initrd",
                                            "cmdline": "autoinstall ds=nocloud-net;s={base}"}, headers=a)
    assert r.status_code == 201, r.text
    assert client.post("/api/v1/images", json={"name": "ubuntu-24.04", "kernel": "k", "initrd": "i"},
                       headers=a).status_code == 409
    assert client.post("/api/v1/images", json={"name": "Bad Name", "kernel": "k", "initrd": "i"},
                       headers=a).status_code == 422
    r = client.post("/api/v1/profiles", json={"name": "dgx-worker", "image": "ubuntu-24.04", "role": "k8s-worker",
                                              "vars": {"disk_layout": "raid1"}}, headers=a)
    assert r.status_code == 201 and r.json()["image"] == "ubuntu-24.04" and r.json()["source"] == "api"
    assert client.post("/api/v1/profiles", json={"name": "p2", "image": "nope"}, headers=a).status_code == 422
    assert client.post("/api/v1/profiles", json={"name": "p2", "role": "nope"}, headers=a).status_code == 422
    r = client.post("/api/v1/nodes", json={"hostname": "w1", "mac": "02:00:00:00:00:01", "profile": "dgx-worker"},
                    headers=auth("operator"))
    assert r.status_code == 201 and r.json()["role"] == "k8s-worker"  # inherited from the profile
    # in use: refuse deletes with 409, change nothing
    r = client.delete("/api/v1/profiles/dgx-worker", headers=a)
    assert r.status_code == 409 and "1 node" in r.json()["detail"]
    assert client.delete("/api/v1/images/ubuntu-24.04", headers=a).status_code == 409
    r = client.patch("/api/v1/profiles/dgx-worker", json={"vars": {"disk_layout": "lvm"}}, headers=a)
    assert r.json()["vars"] == {"disk_layout": "lvm"}
    assert client.get("/api/v1/profiles/nope", headers=a).status_code == 404
    assert client.get("/api/v1/images/nope", headers=a).status_code == 404
    assert client.delete("/api/v1/nodes/w1", headers=a).status_code == 204
    assert client.delete("/api/v1/profiles/dgx-worker", headers=a).status_code == 204
    assert client.delete("/api/v1/images/ubuntu-24.04", headers=a).status_code == 204
    assert client.get("/api/v1/profiles", headers=auth("viewer")).json() == []


def test_config_profiles_are_synced(make_ctx) -> None:
    from dgxie.catalog.profiles import list_profiles
    from dgxie.sections import ProfileConfig

    ctx = make_ctx(profiles={"dgx": ProfileConfig(role="slurmd", vars={"a": 1})})
    with ctx.sessions() as s:
        (p,) = list_profiles(s)
        assert (p.name, p.role, p.vars, p.source) == ("dgx", "slurmd", {"a": 1}, "config")
    ctx2 = make_ctx(profiles={"dgx": ProfileConfig(role="slurmd", vars={"a": 2})})
    with ctx2.sessions() as s:
        assert list_profiles(s)[0].vars == {"a": 2}


def test_tokens_hashed_shown_once_revocable(client, auth, ctx) -> None:
    a = auth("admin")
    r = client.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"}, headers=a)
    assert r.status_code == 201
    plain = r.json()["token"]
    assert plain.startswith("dgxie_") and len(plain) > 40
    with ctx.sessions() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.name == "ci"))
        assert row is not None and plain not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
    listed = client.get("/api/v1/tokens", headers=a)
    assert plain not in listed.text and "ci" in listed.text
    assert client.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"}, headers=a).status_code == 409
    assert client.post("/api/v1/tokens", json={"name": "x", "role": "root"}, headers=a).status_code == 422
    h = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/nodes", headers=h).status_code == 200
    assert client.get("/api/v1/tokens/self", headers=h).json() == {"name": "ci", "role": "viewer"}
    assert client.get("/api/v1/tokens", headers=h).status_code == 403  # a viewer sees itself, not the others
    assert client.delete("/api/v1/tokens/ci", headers=a).status_code == 200
    assert client.get("/api/v1/nodes", headers=h).status_code == 401
    assert client.get("/api/v1/tokens/self", headers=h).status_code == 401
    assert client.get("/api/v1/tokens/self").status_code == 401


def test_health_metrics_openapi(client, auth) -> None:
    client.post("/api/v1/nodes", json={"hostname": "m1", "mac": "02:00:00:00:00:01"}, headers=auth("operator"))
    assert client.get("/healthz").json()["status"] == "ok"
    text = client.get("/metrics").text
    assert 'dgxie_nodes{state="enrolled"} 1.0' in text
    assert 'dgxie_http_requests_total{method="POST",route="/api/v1/nodes",status="201"} 1.0' in text
    spec = client.get("/openapi.json").json()
    assert "/api/v1/nodes" in spec["paths"] and client.get("/docs").status_code == 200
