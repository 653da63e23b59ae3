"""Issue 12, item 1: a MAC is not enough. Whoever fetches a node's iPXE script (anyone: it is
unauthenticated, as firmware needs) learns its boot token; these tests take that token and try
everything the node can do, from another address and then from the node's own, on SQLite and
PostgreSQL, against the real app.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from dgxie import db
from dgxie.app import create_app
from dgxie.compose import build_context
from dgxie.context import Context
from dgxie.errors import NotFound
from dgxie.models import DhcpLease
from dgxie.models.types import utcnow
from dgxie.nodes import credentials
from tests.conftest import settings_for
from tests.support.lifecycle import SSH_KEY, enroll, kinds, state_of

NODE_IP, OTHER_IP, LEASED_IP, RELAY_IP = "10.0.0.11", "10.0.0.66", "10.0.0.150", "10.99.0.7"
MAC = "aa:bb:cc:00:00:01"
ROLES = {"slurmd": {"groups": ["slurm-node"], "bootstrap": "cloud-init", "script": "bootstrap/slurmd.sh.j2"},
         "k8s-worker": {"groups": ["kube_node"]}}  # the support profile's role; the node is moved to slurmd
MUNGE = "bXVuZ2Uta2V5LWZvci10ZXN0cy0wMTIzNDU2Nzg5"
APPS: dict[int, FastAPI] = {}


def _ctx(make_ctx: Callable[..., Context]) -> Context:
    ctx = make_ctx(site={"name": "lab", "ssh_authorized_keys": [SSH_KEY]}, roles=ROLES, handoff={"enabled": False},
                   boot={"trusted_networks": ["10.99.0.0/24"]})
    with db.session_scope(ctx.sessions) as s:
        from dgxie.handoff import secrets

        secrets.set_secret(s, ctx.site, "munge-key", MUNGE, roles=["slurmd"], actor="test")
    return ctx


def _client(ctx: Context, ip: str) -> TestClient:
    """A client at `ip` on the context's one app (no lifespan: no background services needed)."""
    if id(ctx) not in APPS:
        APPS[id(ctx)] = create_app(ctx)
    return TestClient(APPS[id(ctx)], client=(ip, 40000))


def _node(ctx: Context, **kw: object) -> str:
    token = enroll(ctx, "dgx01", MAC)
    with db.session_scope(ctx.sessions) as s:
        from dgxie.nodes.service import get_node

        n = get_node(s, "dgx01")
        n.ip, n.role = NODE_IP, "slurmd"
        assert n.profile is not None and n.profile.image is not None
        n.profile.image.cmdline = "autoinstall ds=nocloud-net;s={base} ---"
        for k, v in kw.items():
            setattr(n, k, v)
    return token


def test_the_token_in_the_ipxe_script_opens_nothing_from_another_address(make_ctx: Callable[..., Context]) -> None:
    ctx = _ctx(make_ctx)
    token = _node(ctx)
    with _client(ctx, OTHER_IP) as attacker:
        script = attacker.get("/boot/ipxe", params={"mac": MAC}).text
        assert token in script  # the script still locates the seed (firmware fetches it by MAC) ...
        for path in ("user-data", "meta-data", "vendor-data", "bootstrap"):
            r = attacker.get(f"/boot/n/{token}/{path}")  # ... but it is answered only to the node
            assert r.status_code == 403 and "only to the node's own address" in r.json()["detail"], path
        for body in (b"event=started", b"event=finished", b"event=progress"):
            assert attacker.post(f"/boot/n/{token}/events", content=body).status_code == 403
            assert attacker.post(f"/boot/n/{token}/events/guess", content=body).status_code == 403
        assert attacker.post(f"/boot/n/{token}/bootstrap/done/guess?status=ok").status_code == 403
    assert state_of(ctx, "dgx01") == "enrolled"
    # each refusal is seen by the admin, but a flood writes one event per node per minute
    assert kinds(ctx, "dgx01").count("security.refused") == 1


def test_the_nodes_own_address_installs_and_only_the_credential_moves_state(
        make_ctx: Callable[..., Context]) -> None:
    ctx = _ctx(make_ctx)
    token = _node(ctx)
    with _client(ctx, NODE_IP) as node:
        # no credential yet: progress is logged, nothing that changes the state is taken
        assert node.post(f"/boot/n/{token}/events", content=b"event=started").status_code == 401
        ud = node.get(f"/boot/n/{token}/user-data")
        assert ud.status_code == 200 and state_of(ctx, "dgx01") == "installing"
        events_url = yaml.safe_load(ud.text)["autoinstall"]["reporting"]["dgxie"]["endpoint"]
        credential = events_url.rsplit("/", 1)[1]
        assert events_url.endswith(f"/boot/n/{token}/events/{credential}") and len(credential) >= 40
        assert node.post(f"/boot/n/{token}/events", content=b"event=progress&message=x").status_code == 200
        for wrong in ("", "preview", credential[:-1] + ("A" if credential[-1] != "A" else "B")):
            r = node.post(f"/boot/n/{token}/events/{wrong}".rstrip("/"), content=b"event=finished")
            assert r.status_code == 401, wrong
        assert state_of(ctx, "dgx01") == "installing"
        r = node.post(events_url, content=b"event=finished")
        assert r.status_code == 200 and r.json()["state"] == "installed"
        # the install config is not served to an installed node, and the credential died with the state
        assert node.get(f"/boot/n/{token}/user-data").status_code == 409
        assert not credentials.valid(_row(ctx), "install", credential)
        # the bootstrap: once, with a new credential of its own
        script = node.get(f"/boot/n/{token}/bootstrap")
        assert script.status_code == 200 and MUNGE in script.text
        assert node.get(f"/boot/n/{token}/bootstrap").status_code == 409
        done = re.search(r"/bootstrap/done/([A-Za-z0-9_-]+)", script.text)
        assert done is not None and done.group(1) != credential
        assert node.post(f"/boot/n/{token}/bootstrap/done/{credential}?status=ok").status_code == 401
        r = node.post(f"/boot/n/{token}/bootstrap/done/{done.group(1)}?status=ok", content=b"ok\n")
        assert r.status_code == 200 and r.json()["state"] == "ready"
    assert kinds(ctx, "dgx01")[-4:] == ["install.finished", "bootstrap.start", "security.refused", "bootstrap.done"]


def _row(ctx: Context) -> object:
    with db.session_scope(ctx.sessions) as s:
        from dgxie.nodes.service import get_node

        return get_node(s, "dgx01")


def test_a_live_dhcp_lease_and_a_trusted_relay_speak_for_the_node(make_ctx: Callable[..., Context]) -> None:
    ctx = _ctx(make_ctx)
    token = _node(ctx, ip=None)
    with db.session_scope(ctx.sessions) as s:
        s.add(DhcpLease(mac=MAC, ip=LEASED_IP, subnet="10.0.0.0/24", expires_at=utcnow() + timedelta(hours=1)))
    with _client(ctx, LEASED_IP) as leased, _client(ctx, RELAY_IP) as relay, _client(ctx, NODE_IP) as stranger:
        assert leased.get(f"/boot/n/{token}/meta-data").status_code == 200
        assert relay.get(f"/boot/n/{token}/meta-data").status_code == 200
        assert stranger.get(f"/boot/n/{token}/meta-data").status_code == 403  # no reservation now
        with db.session_scope(ctx.sessions) as s:
            lease = s.get(DhcpLease, MAC)
            assert lease is not None
            lease.expires_at = utcnow() - timedelta(seconds=1)
        assert leased.get(f"/boot/n/{token}/meta-data").status_code == 403  # an expired lease is no one's


def test_boot_tokens_are_not_stored(make_ctx: Callable[..., Context]) -> None:
    ctx = _ctx(make_ctx)
    token = _node(ctx)
    with db.session_scope(ctx.sessions) as s:
        rows = s.execute(text("SELECT * FROM nodes")).all()
        n = credentials.node_by_boot_token(s, ctx.site.box, token)
        assert n.boot_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(rows)
    # a reprovision makes a new token; the old one names no node
    with _client(ctx, NODE_IP) as node:
        from dgxie.nodes.reprovision import reprovision
        from dgxie.nodes.service import get_node

        with db.session_scope(ctx.sessions) as s:
            reprovision(s, ctx.site, get_node(s, "dgx01"), actor="test")
        assert node.get(f"/boot/n/{token}/meta-data").status_code == 404


def test_migration_0011_retires_the_stored_tokens(tmp_path: Path) -> None:
    """A node enrolled before 0011 (its token stored in clear) gets a derived token after it; the
    clear one, which anyone with the old database could read, opens nothing."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "0010")
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO nodes (hostname, state, tags, facts, vars, boot_token, progress_suppressed, "
                          "state_changed_at, created_at, updated_at) VALUES ('old01', 'enrolled', '[]', '{}', "
                          "'{}', 'clear-token-from-before', 0, '2026-01-01', '2026-01-01', '2026-01-01')"))
    engine.dispose()
    db.upgrade(url)
    ctx = build_context(settings_for(url, tmp_path / "data"), migrate=False)
    try:
        with db.session_scope(ctx.sessions) as s:
            with pytest.raises(NotFound):
                credentials.node_by_boot_token(s, ctx.site.box, "clear-token-from-before")
            row = s.execute(text("SELECT boot_nonce, boot_token_hash FROM nodes")).one()
            assert row[0] == "clear-token-from-before" and row[1] is not None  # filled on first use
            from dgxie.nodes.service import get_node

            new = credentials.boot_token(ctx.site.box, get_node(s, "old01"))
            assert credentials.node_by_boot_token(s, ctx.site.box, new).hostname == "old01"
    finally:
        ctx.engine.dispose()
