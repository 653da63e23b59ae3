"""Seeds and installer callbacks over HTTP (TestClient against the real app, SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dgxie import db
from dgxie.app import create_app
from dgxie.compose.root import install_sweeper
from dgxie.context import Context
from dgxie.jobs.leader import Singleton
from dgxie.models import Event, Node
from dgxie.models.types import utcnow
from dgxie.nodes import lifecycle, service
from dgxie.nodes.reprovision import ReprovisionHooks, reprovision
from tests.support.lifecycle import SSH_KEY, enroll, install_credential, kinds, state_of, token_of

SETTINGS: dict[str, Any] = {
    "site": {"name": "lab", "domain": "lab.example", "ssh_authorized_keys": [SSH_KEY]},
    "mirrors": [{"name": "ubuntu-noble", "kind": "apt", "url": "http://127.0.0.1:9/ubuntu", "suites": ["noble"],
                 "keyring": "/usr/share/keyrings/ubuntu-archive-keyring.gpg"}],
    "install": {"progress_interval_seconds": 3600, "callback_max_bytes": 4096},
    # an ansible role with the handoff worker off: a finished node stays `installed` for these tests
    # (tests/integration/test_wiring_lifecycle_handoff.py covers the handoff after "finished")
    "roles": {"k8s-worker": {"groups": ["kube_node"], "bootstrap": "ansible", "playbook": "site.yml"}},
    "handoff": {"enabled": False},
    "boot": {"trusted_networks": ["10.99.0.0/24"]},
}
RELAY = "10.99.0.1"


@pytest.fixture
def lctx(make_ctx: Callable[..., Context]) -> Context:
    return make_ctx(**SETTINGS)


@pytest.fixture
def lc(lctx: Context) -> Iterator[TestClient]:
    # these tests are about the lifecycle, not address binding (tests/integration/test_boot_trust.py):
    # the client's address is a trusted relay, so it may speak for every node
    with TestClient(create_app(lctx), client=(RELAY, 50000)) as c:
        yield c


def post(c: TestClient, token: str, body: Any) -> Any:
    """Post a callback as the node's installer would: with the install credential its config carried."""
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return c.post(f"/boot/n/{token}/events/{install_credential(c.app.state.ctx, token)}", content=data)


def test_seed_files_under_the_token(lc: TestClient, lctx: Context) -> None:
    tok = enroll(lctx, profile_vars={"apt_mirror": "ubuntu-noble"})
    other = enroll(lctx, "dgx02", "aa:bb:cc:00:00:02")
    r = lc.get(f"/boot/n/{tok}/meta-data")
    assert r.status_code == 200 and "local-hostname: \"dgx01\"" in r.text
    assert state_of(lctx, "dgx01") == "enrolled"  # meta-data alone does not start an install
    r = lc.get(f"/boot/n/{tok}/user-data")
    assert r.status_code == 200 and r.text.startswith("#cloud-config\n")
    assert r.headers["content-type"].startswith("text/cloud-config") and r.headers["cache-control"] == "no-store"
    assert "http://127.0.0.1:8080/mirror/apt/ubuntu-noble" in r.text and other not in r.text
    assert state_of(lctx, "dgx01") == "installing" and state_of(lctx, "dgx02") == "enrolled"
    assert lc.get(f"/boot/n/{tok}/vendor-data").status_code == 200
    for path in (f"/boot/n/{tok}x/user-data", "/boot/n/nope/user-data", f"/boot/n/{tok}/preseed",
                 f"/boot/n/{tok}/secrets", f"/boot/n/{tok[:-1]}/meta-data"):
        r = lc.get(path)
        assert (r.status_code, r.json()) == (404, {"detail": "not found"}), path


def test_invalid_render_is_503_for_the_node_and_an_event_for_the_admin(lc: TestClient, lctx: Context) -> None:
    tok = enroll(lctx, node_vars={"disk_layout": "raid1", "os_disks": ["/dev/sda"]})
    r = lc.get(f"/boot/n/{tok}/user-data")
    assert (r.status_code, r.json()) == (503, {"detail": "config not available"})
    assert state_of(lctx, "dgx01") == "enrolled"
    with db.session_scope(lctx.sessions) as s:
        ev = s.query(Event).filter(Event.kind == "render.error").one()
        assert "ubuntu/user-data.j2" in ev.reason and "raid1 needs os_disks" in ev.reason


def test_callbacks_in_order_replay_and_refusals(lc: TestClient, lctx: Context) -> None:
    tok = enroll(lctx)
    assert post(lc, tok, {"event": "started"}).json() == {"state": "installing", "changed": True, "logged": True}
    assert post(lc, tok, "event=progress&message=partitioning").json()["logged"] is False  # within the interval
    assert post(lc, tok, {"event": "finished", "message": "done"}).json()["state"] == "installed"
    r = post(lc, tok, {"event": "finished"})
    assert (r.status_code, r.json()) == (200, {"state": "installed", "changed": False, "logged": False})
    for body in ({"event": "started"}, {"event": "failed"}):
        r = post(lc, tok, body)
        assert r.status_code == 409 and "installed" in r.json()["detail"]
    # progress from the installed system's first boot (cloud-init's webhook) is taken, no state change
    # (and aggregated like any progress: this one falls within the hour-long interval set above)
    r = post(lc, tok, {"event": "progress", "message": "first boot"})
    assert r.json() == {"state": "installed", "changed": False, "logged": False}
    assert kinds(lctx, "dgx01") == ["node.create", "install.start", "install.finished"]
    assert state_of(lctx, "dgx01") == "installed"


def test_failed_then_replayed_failed(lc: TestClient, lctx: Context) -> None:
    tok = enroll(lctx)
    assert post(lc, tok, {"event": "failed", "message": "no disk"}).json()["state"] == "failed"
    assert post(lc, tok, {"event": "failed"}).json()["changed"] is False
    assert post(lc, tok, {"event": "finished"}).status_code == 409
    assert kinds(lctx, "dgx01") == ["node.create", "install.failed"]


def test_finished_before_started_is_out_of_order(lc: TestClient, lctx: Context) -> None:
    tok = enroll(lctx)
    r = post(lc, tok, {"event": "finished"})
    assert r.status_code == 409 and "out of order" in r.json()["detail"]
    assert state_of(lctx, "dgx01") == "enrolled" and kinds(lctx, "dgx01") == ["node.create"]
    assert post(lc, tok, {"event": "progress", "message": "partitioning"}).json()["state"] == "installing"
    assert post(lc, tok, {"event": "started"}).json() == {"state": "installing", "changed": False, "logged": False}
    assert post(lc, tok, {"event": "finished"}).json()["state"] == "installed"


def test_wrong_token_unknown_node_garbage_and_huge_bodies(lc: TestClient, lctx: Context) -> None:
    tok = enroll(lctx)
    assert post(lc, "x" * 32, {"event": "finished"}).status_code == 404
    assert post(lc, tok + "a", {"event": "finished"}).status_code == 404
    assert post(lc, "x" * 32, b"garbage").status_code == 404  # no oracle: the token is checked first
    for body in (b"garbage", b'{"event": "done"}', b"\xff"):
        assert post(lc, tok, body).status_code == 422
    r = post(lc, tok, {"event": "progress", "message": "x" * 5000})
    assert r.status_code == 413 and "4096" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(10):
            yield b"x" * 1000

    assert lc.post(f"/boot/n/{tok}/events", content=chunks()).status_code == 413
    assert state_of(lctx, "dgx01") == "enrolled" and kinds(lctx, "dgx01") == ["node.create"]


def test_node_in_other_states_is_refused(lc: TestClient, lctx: Context) -> None:
    for i, state in enumerate(("discovered", "bootstrapping", "ready")):
        tok = enroll(lctx, f"n{i}", f"aa:bb:cc:00:01:0{i}", state=state)
        assert post(lc, tok, {"event": "started"}).status_code == 409


def test_chatty_installer_is_aggregated(lc: TestClient, lctx: Context) -> None:
    """One progress event per interval (an hour here); the rest are counted into the next logged one."""
    tok = enroll(lctx)
    webhook = {"name": "cmd-install/stage-x", "description": "", "event_type": "start", "origin": "curtin",
               "timestamp": 1.0}
    for _ in range(200):
        assert post(lc, tok, webhook).status_code == 200
    assert post(lc, tok, webhook | {"event_type": "finish", "result": "FAIL"}).json()["logged"] is True  # urgent
    assert post(lc, tok, webhook).json()["logged"] is False
    with db.session_scope(lctx.sessions) as s:  # the interval has passed
        s.query(Node).one().progress_logged_at = utcnow() - timedelta(hours=2)
    assert post(lc, tok, webhook).json()["logged"] is True
    with db.session_scope(lctx.sessions) as s:
        evs = s.query(Event).filter(Event.kind == "install.progress").order_by(Event.id).all()
        assert [e.data.get("suppressed", 0) for e in evs] == [199, 1]
        assert evs[0].data["result"] == "FAIL" and evs[0].reason.startswith("finish cmd-install/stage-x: FAIL")
    assert kinds(lctx, "dgx01") == ["node.create", "install.start", "install.progress", "install.progress"]
    assert post(lc, tok, webhook).json()["logged"] is False
    assert post(lc, tok, {"event": "finished"}).json()["state"] == "installed"
    with db.session_scope(lctx.sessions) as s:
        fin = s.query(Event).filter(Event.kind == "install.finished").one()
        assert fin.data["suppressed"] == 1 and s.query(Node).one().progress_suppressed == 0


def test_webhook_top_level_fail_fails_the_install(lc: TestClient, lctx: Context) -> None:
    tok = enroll(lctx)
    ev = {"name": "cmd-install", "description": "curtin command install", "event_type": "finish",
          "origin": "curtin", "timestamp": 1.0, "result": "FAIL"}
    assert post(lc, tok, ev).json()["state"] == "failed"


def test_reprovision_rotates_the_token(lc: TestClient, lctx: Context, auth: Callable[[str], dict[str, str]]) -> None:
    tok = enroll(lctx)
    post(lc, tok, {"event": "started"})
    assert post(lc, tok, {"event": "finished"}).json()["state"] == "installed"
    calls: list[tuple[str, str, str]] = []
    hooks = ReprovisionHooks(
        before=[lambda s, site, n, actor: calls.append(("before", n.hostname, n.state))],
        after=[lambda s, site, n, actor: calls.append(("after", n.hostname, n.state))])
    lctx.reprovision = hooks
    assert lc.post("/api/v1/nodes/dgx01/reprovision", headers=auth("viewer")).status_code == 403
    r = lc.post("/api/v1/nodes/dgx01/reprovision", headers=auth("operator"))
    assert r.status_code == 200 and r.json()["state"] == "enrolled" and tok not in r.text
    assert calls == [("before", "dgx01", "installed"), ("after", "dgx01", "enrolled")]
    new = token_of(lctx, "dgx01")
    assert new != tok
    assert lc.get(f"/boot/n/{tok}/user-data").status_code == 404
    assert post(lc, tok, {"event": "started"}).status_code == 404
    assert lc.get(f"/boot/n/{new}/meta-data").status_code == 200
    assert post(lc, new, {"event": "started"}).json()["state"] == "installing"
    assert lc.post("/api/v1/nodes/nope/reprovision", headers=auth("operator")).status_code == 404


def test_timeout_sweep(lctx: Context) -> None:
    enroll(lctx, "slow", "aa:bb:cc:00:00:05", state="installing")
    enroll(lctx, "busy", "aa:bb:cc:00:00:06", state="installing")
    enroll(lctx, "idle", "aa:bb:cc:00:00:07")  # enrolled, never booted: not an install timeout
    with db.session_scope(lctx.sessions) as s:
        now = utcnow()
        for n in s.query(Node):
            n.state_changed_at = now - timedelta(hours=3)
        s.query(Node).filter(Node.hostname == "busy").one().install_seen_at = now - timedelta(minutes=5)
    sweep = install_sweeper(lctx.sessions, lctx.site).fn
    assert sweep() == ["slow"]
    assert sweep() == []
    assert [state_of(lctx, h) for h in ("slow", "busy", "idle")] == ["failed", "installing", "enrolled"]
    with db.session_scope(lctx.sessions) as s:
        assert lifecycle.sweep_install_timeouts(s, timeout=timedelta(minutes=90),
                                                now=utcnow() + timedelta(hours=2)) == ["busy"]
        ev = s.query(Event).filter(Event.kind == "install.timeout").order_by(Event.id).first()
        assert ev is not None and ev.actor == "dgxie:timeout" and "limit 90 min" in ev.reason


def test_sweeper_runs_in_the_app_lifespan(make_ctx: Callable[..., Context]) -> None:
    ctx = make_ctx(install={"timeout_minutes": 1, "sweep_seconds": 0.2})
    enroll(ctx, state="installing")
    with db.session_scope(ctx.sessions) as s:
        service.get_node(s, "dgx01").state_changed_at = utcnow() - timedelta(minutes=5)
    import time

    sweeper = ctx.service("install-timeout-sweep")
    assert isinstance(sweeper, Singleton)  # once per site: the holder of its lease runs it
    with TestClient(create_app(ctx)):
        assert sweeper._task is not None, "the lifespan started it"
        deadline = time.monotonic() + 20
        while state_of(ctx, "dgx01") != "failed" and time.monotonic() < deadline:
            time.sleep(0.1)
    assert state_of(ctx, "dgx01") == "failed"
    assert sweeper._task is None  # stopped with the app


def test_sse_stream_and_resume(lc: TestClient, lctx: Context, auth: Callable[[str], dict[str, str]]) -> None:
    tok = enroll(lctx)
    post(lc, tok, {"event": "started"})
    post(lc, tok, {"event": "finished"})
    url = "/api/v1/nodes/dgx01/events/stream?timeout=0.5&poll=0.1"
    with lc.stream("GET", url, headers=auth("viewer")) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    msgs = [m for m in text.split("\n\n") if m.startswith("id: ")]
    ids = [int(m.split("\n")[0][4:]) for m in msgs]
    assert [m.split("\n")[1] for m in msgs] == ["event: node.create", "event: install.start", "event: install.finished"]
    assert json.loads(msgs[-1].split("\n")[2][6:])["to_state"] == "installed"
    with lc.stream("GET", url, headers=auth("viewer") | {"Last-Event-ID": str(ids[0])}) as r:
        again = [m for m in "".join(r.iter_text()).split("\n\n") if m.startswith("id: ")]
    assert [int(m.split("\n")[0][4:]) for m in again] == ids[1:]
    assert lc.get(url, headers=auth("viewer") | {"Last-Event-ID": "x"}).status_code == 422
    assert lc.get("/api/v1/nodes/nope/events/stream", headers=auth("viewer")).status_code == 404
    assert lc.get(url).status_code == 401


def test_service_level_install_sequence(lctx: Context) -> None:
    """What the VM lifecycle test drives over HTTP (enroll -> boot -> busybox callbacks -> local disk),
    through the services alone: the boot decision before, during and after, and after reprovision."""
    from dgxie.boot.decide import Action, decide
    from dgxie.nodes import callbacks, credentials

    tok = enroll(lctx)
    assert decide(state_of(lctx, "dgx01"), discovery=False).action is Action.INSTALL
    with db.session_scope(lctx.sessions) as s:
        callbacks.note_fetch(s, credentials.node_by_boot_token(s, lctx.site.box, tok), "user-data")
    for body in (b"event=started", b"event=progress&message=partitioning", b"event=finished"):
        with db.session_scope(lctx.sessions) as s:
            callbacks.apply(s, credentials.node_by_boot_token(s, lctx.site.box, tok), callbacks.parse(body), interval=0)
    assert state_of(lctx, "dgx01") == "installed"
    assert decide(state_of(lctx, "dgx01"), discovery=False).action is Action.LOCAL_DISK
    assert kinds(lctx, "dgx01") == ["node.create", "install.start", "install.progress", "install.progress",
                                    "install.finished"]
    with db.session_scope(lctx.sessions) as s:
        reprovision(s, lctx.site, service.get_node(s, "dgx01"), actor="test")
    assert decide(state_of(lctx, "dgx01"), discovery=False).action is Action.INSTALL


def test_sse_heartbeat(lc: TestClient, lctx: Context, auth: Callable[[str], dict[str, str]],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    from dgxie.api import sse

    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.2)
    enroll(lctx)
    with lc.stream("GET", "/api/v1/nodes/dgx01/events/stream?timeout=1&poll=0.1&after=999",
                   headers=auth("viewer")) as r:
        text = "".join(r.iter_text())
    assert text.startswith("retry: 100\n\n") and ": heartbeat\n\n" in text and "id: " not in text
