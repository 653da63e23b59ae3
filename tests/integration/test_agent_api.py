"""The deploy agent's API against the real app (SQLite and PostgreSQL): hello bound to the leased
address, the one-time token, facts, plan, progress, done, enroll and erase (docs/deploy.md)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dgxie import db
from dgxie.app import create_app
from dgxie.context import Context
from dgxie.ipxe.render import ipxe_script
from dgxie.models import DhcpLease, Event, Image, Node, Profile
from tests.support.paths import REPO

MAC = "52:54:00:aa:00:01"
IP = "10.9.0.50"
BUNDLE = REPO / "tests" / "fixtures" / "agent" / "vm-firecracker"
SHA = "ab" * 32


def bundle() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for f in sorted(BUNDLE.iterdir()):
            t.add(f, arcname=f.name)
    return raw.getvalue()


@pytest.fixture
def actx(make_ctx: Callable[..., Context]) -> Context:
    c = make_ctx(dhcp={"discovery": True, "subnets": [{"cidr": "10.9.0.0/24", "pool": "10.9.0.100-10.9.0.199"}]},
                 roles={"plain": {"groups": ["kube_node"], "bootstrap": "none"}}, handoff={"enabled": False},
                 install={"progress_interval_seconds": 0})
    with db.session_scope(c.sessions) as s:
        s.add(Image(name="agent", os="dgxie-agent", kernel="vmlinuz", initrd="initrd.img",
                    cmdline="console=ttyS0 dgxie.url={public_url} dgxie.mac={mac}", files={}))
        img = Image(name="debian-12", os="debian", kernel="vmlinuz", initrd="initrd.img", cmdline="",
                    files={"rootfs": {"file": "rootfs.tar.zst", "sha256": SHA, "size": 1234, "format": "tar.zst"}})
        s.add(img)
        s.add(Profile(name="deploy", template="image/deploy", role="plain", vars={}, image=img))
        bare = Image(name="no-rootfs", os="debian", kernel="vmlinuz", initrd="initrd.img", cmdline="", files={})
        s.add(Profile(name="norootfs", template="image/deploy", role="plain", vars={}, image=bare))
        s.add(Profile(name="nodisk", template="image/deploy", role="plain", vars={"disk": {"serial": "NOPE"}},
                      image=img))
        s.add(DhcpLease(mac=MAC, ip=IP, subnet="10.9.0.0/24", expires_at=datetime.now(UTC) + timedelta(hours=1)))
    return c


@pytest.fixture
def node_client(actx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(actx), client=(IP, 40000)) as c:
        yield c


def hello(c: TestClient, first: str = "1", mac: str = MAC) -> dict[str, str]:
    r = c.post("/agent/v1/hello", content=f"mac={mac}&first={first}")
    assert r.status_code == 200, r.text
    return dict(line.split("=", 1) for line in r.text.strip().splitlines())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def node_row(ctx: Context, name: str) -> Node:
    with db.session_scope(ctx.sessions) as s:
        n = s.scalar(select(Node).where(Node.hostname == name))
        assert n is not None
        s.expunge(n)
        return n


def kinds(ctx: Context) -> list[str]:
    with db.session_scope(ctx.sessions) as s:
        return [e.kind for e in s.scalars(select(Event).order_by(Event.id))]


def test_hello_only_from_the_leased_address(actx: Context) -> None:
    with TestClient(create_app(actx), client=("10.9.0.77", 40000)) as c:
        r = c.post("/agent/v1/hello", content=f"mac={MAC}&first=1")
        assert r.status_code == 403 and r.json() == {"detail": f"10.9.0.77 is not the address dgxie gave {MAC}"}
        assert c.post("/agent/v1/hello", content="mac=nonsense").status_code == 422
    with db.session_scope(actx.sessions) as s:
        assert s.scalar(select(Node)) is None  # nothing created for a stranger


def test_commission_enroll_deploy_finish(actx: Context, node_client: TestClient,
                                         client: TestClient, auth: Callable[[str], dict[str, str]]) -> None:
    c = node_client
    h = hello(c)
    assert h["DGXIE_MODE"] == "commission" and h["DGXIE_NODE"] == "node-525400aa0001"
    token = h["DGXIE_TOKEN"]
    n = node_row(actx, "node-525400aa0001")
    assert n.state == "discovered" and n.credential_hash == hashlib.sha256(token.encode()).hexdigest()
    assert n.credential_purpose == "agent" and token not in str(n.credential_hash)
    assert c.post("/agent/v1/facts", content=b"not a tar", headers=bearer(token)).status_code == 422
    assert c.post("/agent/v1/facts", content=bundle(), headers=bearer("wrong")).status_code == 401
    assert c.post("/agent/v1/facts", content=bundle(), headers=bearer(token)).text == "ok\n"
    facts = node_row(actx, "node-525400aa0001").facts["commissioning"]
    assert facts["detail"]["disks"] and facts["cpus"] >= 1
    # the next hello waits, and replaces the token
    h2 = hello(c, first="0")
    assert h2["DGXIE_MODE"] == "wait" and h2["DGXIE_TOKEN"] != token
    assert c.get("/agent/v1/plan", headers=bearer(token)).status_code == 401
    # the operator enrolls it (facts and MAC kept)
    r = client.post("/api/v1/nodes/node-525400aa0001/enroll", json={"profile": "deploy", "hostname": "dgx01"},
                    headers=auth("operator"))
    assert r.status_code == 200 and r.json()["state"] == "enrolled", r.text
    assert client.post("/api/v1/nodes/dgx01/enroll", json={"profile": "deploy"},
                       headers=auth("operator")).status_code == 409
    assert c.get("/agent/v1/plan", headers=bearer(h2["DGXIE_TOKEN"])).status_code == 401  # state changed
    h3 = hello(c, first="0")
    assert h3["DGXIE_MODE"] == "deploy" and h3["DGXIE_NODE"] == "dgx01"
    r = c.get("/agent/v1/plan", headers=bearer(h3["DGXIE_TOKEN"]))
    assert r.status_code == 200, r.text
    plan = dict(line.split("=", 1) for line in r.text.strip().splitlines())
    assert plan["PLAN_DISKS"].startswith("/dev/") and plan["PLAN_IMAGE_SHA256"] == SHA
    assert plan["PLAN_IMAGE_URL"] == "http://127.0.0.1:8080/images/debian-12/rootfs.tar.zst"
    assert plan["PLAN_SEED_URL"].startswith("http://127.0.0.1:8080/boot/n/")
    assert node_row(actx, "dgx01").state == "installing"
    tok = plan["DGXIE_TOKEN"]
    assert c.post("/agent/v1/progress", content="step=image&message=writing", headers=bearer(tok)).text == "ok\n"
    r = c.post("/agent/v1/done", content="status=ok&step=done", headers=bearer(tok))
    assert r.status_code == 200 and node_row(actx, "dgx01").state == "ready"  # role `plain` needs no bootstrap
    assert c.post("/agent/v1/done", content="status=ok", headers=bearer(tok)).status_code == 401  # one-time
    assert {"agent.hello", "agent.facts", "enroll", "install.start", "agent.progress",
            "install.finished"} <= set(kinds(actx))


def _to_deploy(actx: Context, c: TestClient, client: TestClient, auth: Any, profile: str) -> str:
    hello(c)
    client.post("/api/v1/nodes/node-525400aa0001/enroll", json={"profile": profile, "hostname": "dgx01"},
                headers=auth("operator"))
    tok = hello(c, first="0")["DGXIE_TOKEN"]
    c.post("/agent/v1/facts", content=bundle(), headers=bearer(tok))
    return tok


def test_a_plan_for_a_missing_disk_fails_the_node(actx: Context, node_client: TestClient, client: TestClient,
                                                   auth: Callable[[str], dict[str, str]]) -> None:
    tok = _to_deploy(actx, node_client, client, auth, "nodisk")
    r = node_client.get("/agent/v1/plan", headers=bearer(tok))
    assert r.status_code == 409 and "no disk matches serial NOPE" in r.json()["detail"], r.text
    n = node_row(actx, "dgx01")
    assert n.state == "failed"
    # the agent's own failure report afterwards changes nothing (and is not an error)
    h = hello(node_client, first="0")
    assert h["DGXIE_MODE"] == "wait"


def test_an_image_without_a_root_file_system_fails_the_node(actx: Context, node_client: TestClient,
                                                           client: TestClient,
                                                           auth: Callable[[str], dict[str, str]]) -> None:
    tok = _to_deploy(actx, node_client, client, auth, "norootfs")
    r = node_client.get("/agent/v1/plan", headers=bearer(tok))
    assert r.status_code == 409 and "has no root file system" in r.json()["detail"], r.text
    assert node_row(actx, "dgx01").state == "failed"  # said, not a silent stall in `enrolled`


def test_a_failed_write_fails_the_node_with_step_and_log(actx: Context, node_client: TestClient,
                                                          client: TestClient,
                                                          auth: Callable[[str], dict[str, str]]) -> None:
    tok = _to_deploy(actx, node_client, client, auth, "deploy")
    plan = node_client.get("/agent/v1/plan", headers=bearer(tok)).text
    tok = dict(line.split("=", 1) for line in plan.strip().splitlines())["DGXIE_TOKEN"]
    r = node_client.post("/agent/v1/done", headers=bearer(tok),
                         content="status=failed&step=image&log=zstd%3A+corrupted+block%0Aimage+sha256+mismatch")
    assert r.status_code == 200
    with db.session_scope(actx.sessions) as s:
        n = s.scalar(select(Node).where(Node.hostname == "dgx01"))
        assert n is not None and n.state == "failed"
        ev = s.scalars(select(Event).where(Event.kind == "install.failed")).one()
        assert ev.reason == "deploy failed at image: image sha256 mismatch" and "zstd" in ev.data["log"]


def test_erase_boots_the_agent_and_returns_to_discovered(actx: Context, node_client: TestClient, client: TestClient,
                                                         auth: Callable[[str], dict[str, str]]) -> None:
    tok = _to_deploy(actx, node_client, client, auth, "deploy")
    assert client.post("/api/v1/nodes/dgx01/erase", headers=auth("viewer")).status_code == 403
    r = client.post("/api/v1/nodes/dgx01/erase", headers=auth("operator"))
    assert r.status_code == 200 and r.json()["state"] == "erasing"
    assert node_client.get("/agent/v1/plan", headers=bearer(tok)).status_code == 401
    with db.session_scope(actx.sessions) as s:
        script = ipxe_script(s.connection(), actx.site, MAC)
    assert "vmlinuz" in script.text and f"dgxie.mac={MAC}" in script.text and "/boot/n/" not in script.text
    h = hello(node_client, first="0")
    assert h["DGXIE_MODE"] == "erase"
    plan = node_client.get("/agent/v1/plan", headers=bearer(h["DGXIE_TOKEN"])).text
    erase = dict(line.split("=", 1) for line in plan.strip().splitlines())
    assert erase["PLAN_DISKS"].strip("'").startswith("/dev/")
    r = node_client.post("/agent/v1/done", content="status=ok&step=done", headers=bearer(erase["DGXIE_TOKEN"]))
    assert r.status_code == 200 and node_row(actx, "dgx01").state == "discovered"


def test_discovery_boots_the_agent_without_a_node_secret(actx: Context) -> None:
    with db.session_scope(actx.sessions) as s:
        script = ipxe_script(s.connection(), actx.site, "52:54:00:aa:00:09")
    assert script.decision.action == "discovery"
    assert "dgxie.url=http://127.0.0.1:8080 dgxie.mac=52:54:00:aa:00:09" in script.text
    assert "/boot/n/" not in script.text


def test_api_cannot_overwrite_machine_facts(actx: Context, node_client: TestClient, client: TestClient,
                                            auth: Callable[[str], dict[str, str]]) -> None:
    tok = hello(node_client)["DGXIE_TOKEN"]
    node_client.post("/agent/v1/facts", content=bundle(), headers=bearer(tok))
    h = auth("operator")
    r = client.patch("/api/v1/nodes/node-525400aa0001", json={"facts": {"commissioning": {}}}, headers=h)
    assert r.status_code == 422 and "read from the machine" in r.text
    r = client.patch("/api/v1/nodes/node-525400aa0001", json={"facts": {"gpus": 8}}, headers=h)
    assert r.status_code == 200, r.text
    facts = node_row(actx, "node-525400aa0001").facts
    assert facts["gpus"] == 8 and facts["commissioning"]["detail"]["disks"]
