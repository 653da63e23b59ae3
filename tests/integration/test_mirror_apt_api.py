"""Mirror admin API, read API, metrics and CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dgxie import db
from dgxie.app import create_app
from dgxie.events import list_events
from tests.support.mirror_apt import World, world


@pytest.fixture
def up(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


def wait_job(c: TestClient, h: dict[str, str], name: str, job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        j: dict[str, Any] = c.get(f"/api/v1/mirrors/{name}/jobs/{job_id}", headers=h).json()
        if j["status"] in ("succeeded", "failed"):
            return j
        time.sleep(0.1)
    raise AssertionError("job did not finish")


def test_api_sync_job_snapshots_rollback_metrics(up: World, make_ctx: Callable[..., Any],
                                                 auth: Callable[[str], dict[str, str]]) -> None:
    ctx = make_ctx(mirrors=[up.mirror()])
    op, viewer = auth("operator"), auth("viewer")
    with TestClient(create_app(ctx)) as c:
        assert c.get("/api/v1/mirrors").status_code == 401
        assert c.post("/api/v1/mirrors/up/sync", headers=viewer).status_code == 403
        assert c.post("/api/v1/mirrors/nope/sync", headers=op).status_code == 404
        assert c.get("/mirror/apt/up/dists/stable/InRelease").status_code == 404  # nothing published yet

        r = c.post("/api/v1/mirrors/up/sync", headers=op)
        assert r.status_code == 202, r.text
        j = wait_job(c, viewer, "up", r.json()["id"])
        assert j["status"] == "succeeded" and j["files_fetched"] == 4 and j["bytes_done"] > 0, j
        assert j["rate_bytes_per_second"] > 0
        first = j["snapshot"]
        m = c.get("/api/v1/mirrors/up", headers=viewer).json()
        assert m["current_snapshot"] == first and m["files"] == 7 and m["job"]["id"] == j["id"]
        assert [x["name"] for x in c.get("/api/v1/mirrors", headers=viewer).json()] == ["up"]

        deb = c.get("/mirror/apt/up/pool/main/h/hello_1.0_amd64.deb")
        assert deb.status_code == 200
        part = c.get("/mirror/apt/up/pool/main/h/hello_1.0_amd64.deb", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == deb.content[10:20]
        assert c.get("/mirror/apt/up/../../secret").status_code == 404
        assert c.get("/mirror/apt/up/pool/main/h/nothing.deb").status_code == 404

        up.add("extra")
        up.repo.publish()
        j2 = wait_job(c, viewer, "up", c.post("/api/v1/mirrors/up/sync", headers=op).json()["id"])
        assert j2["status"] == "succeeded" and j2["snapshot"] != first
        assert c.get("/mirror/apt/up/pool/main/e/extra_1.0_amd64.deb").status_code == 200
        snaps = c.get("/api/v1/mirrors/up/snapshots", headers=viewer).json()
        assert [(s["snapshot"], s["current"]) for s in snaps] == [(first, False), (j2["snapshot"], True)]

        assert c.post("/api/v1/mirrors/up/rollback", json={"snapshot": "nope"}, headers=op).status_code == 422
        r = c.post("/api/v1/mirrors/up/rollback", json={"snapshot": first}, headers=op)
        assert r.status_code == 200 and r.json()["current_snapshot"] == first
        assert c.get("/mirror/apt/up/pool/main/e/extra_1.0_amd64.deb").status_code == 404
        with ctx.sessions() as s:  # who rolled back, from what to what: an event like any other change
            (ev,) = list_events(s, kind="mirror.rollback")
        assert ev.actor.startswith("token:t-operator-")
        assert ev.data == {"mirror": "up", "kind": "apt", "from": j2["snapshot"], "to": first}

        up.handler.fail.add("/dists/stable/InRelease")
        up.handler.fail.add("/dists/stable/Release")
        j3 = wait_job(c, viewer, "up", c.post("/api/v1/mirrors/up/sync", headers=op).json()["id"])
        assert j3["status"] == "failed" and "not found" in j3["error"]

        metrics = c.get("/metrics").text
        assert 'dgxie_mirror_files{kind="apt",mirror="up"} 7.0' in metrics
        assert 'dgxie_mirror_sync_failures_total{kind="apt",mirror="up"} 1.0' in metrics
        assert 'dgxie_mirror_last_success_timestamp_seconds{kind="apt",mirror="up"}' in metrics


def test_cli(up: World, cli: Callable[..., Any], config_file: Callable[..., Path], db_url: str) -> None:
    config_file(mirrors=[up.mirror()])
    r = cli("mirror", "sync", "up", "-q")
    assert r.code == 0, r.err
    assert "fetched 4 files" in r.err
    snap = json.loads(cli("mirror", "jobs", "up", "--json").out)[0]["snapshot"]
    r = cli("mirror", "rollback", "up", snap)
    assert r.code == 0 and r.err == f"up: now serving {snap}\n"
    engine = db.make_engine(db_url)
    with db.session_scope(db.session_factory(engine)) as s:
        (ev,) = list_events(s, kind="mirror.rollback")
    engine.dispose()
    assert ev.actor.startswith("cli:") and ev.data == {"mirror": "up", "kind": "apt", "from": snap, "to": snap}
    r = cli("mirror", "list", "--json")
    assert r.code == 0 and '"current_snapshot": "2' in r.out
    r = cli("mirror", "snapshots", "up")
    assert r.code == 0 and "*" in r.out
    r = cli("mirror", "rollback", "up", "nope")
    assert r.code == 1 and r.err.startswith("dgxie: error: mirror up has no snapshot 'nope'")
    r = cli("mirror", "sync", "nope")
    assert r.code == 1 and r.err == "dgxie: error: no mirror named 'nope' in the configuration\n"
    up.handler.fail.add("/pool/main/w/world_1.0_amd64.deb")  # already stored: not asked again
    up.handler.fail.add("/pool/main/e/extra_1.0_amd64.deb")
    up.add("extra")
    up.repo.publish()
    r = cli("mirror", "sync", "up", "-q")
    assert r.code == 1 and r.err.startswith("dgxie: error: mirror up: sync failed: http://127.0.0.1")
    assert r.err.endswith("/pool/main/e/extra_1.0_amd64.deb: HTTP 404\n") and r.err.count("\n") == 1
    r = cli("mirror", "jobs", "up", "--json")
    assert r.code == 0 and [j["status"] for j in json.loads(r.out)] == ["failed", "succeeded"]


def test_schedule(up: World, make_ctx: Callable[..., Any]) -> None:
    from datetime import timedelta

    from dgxie.jobs.worker import JobWorker
    from dgxie.mirror.schedule import Scheduler, due
    from dgxie.mirror.service import SYNC_KIND
    from dgxie.models import Job, MirrorJob

    ctx = make_ctx(mirrors=[up.mirror(interval="1m"), up.mirror("manual")])
    with ctx.sessions() as s:
        assert due(s, ctx.site) == ["up"]
    sched = Scheduler(ctx.sessions, ctx.site, check_every=0.1)
    worker = JobWorker(ctx.sessions, ctx.site.instance, ctx.job_kinds, poll=0.1)  # runs the queued sync

    async def run() -> None:
        await sched.start()
        await worker.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with ctx.sessions() as s:
                    jobs = s.query(MirrorJob).all()
                    if jobs and jobs[0].status == "succeeded":
                        break
                await asyncio.sleep(0.1)
        finally:
            await worker.stop()
            await sched.stop()

    asyncio.run(run())
    with ctx.sessions() as s:
        jobs = s.query(MirrorJob).all()
        assert [(j.mirror, j.trigger, j.status) for j in jobs] == [("up", "schedule", "succeeded")]
        runs = s.query(Job).all()  # the sync ran as one queue job, once
        assert [(j.kind, j.key, j.status, j.executions) for j in runs] == [(SYNC_KIND, "mirror.sync:up", "done", 1)]
        assert due(s, ctx.site) == []
        jobs[0].created_at -= timedelta(seconds=61)
        s.commit()
        assert due(s, ctx.site) == ["up"]


def test_gc_keeps_what_snapshots_reference(up: World, cli: Callable[..., Any],
                                           config_file: Callable[..., Path], tmp_path: Path) -> None:
    config_file(mirrors=[up.mirror(keep_snapshots=1)])
    assert cli("mirror", "sync", "up", "-q").code == 0
    first_inrelease = (tmp_path / "data/mirrors/apt/up/current/dists/stable/InRelease").read_bytes()
    up.add("extra")
    up.repo.publish()
    assert cli("mirror", "sync", "up", "-q").code == 0  # the first snapshot is pruned (keep 1)
    r = cli("mirror", "gc", "--dry-run")
    # only the old InRelease goes: the old indexes stay referenced by-hash from the new snapshot
    assert r.code == 0 and r.err.startswith("would remove 1 blobs")
    r = cli("mirror", "gc")
    assert r.code == 0 and r.err.startswith("removed 1 blobs")
    from dgxie.mirror.kind import store_for

    store = store_for(tmp_path / "data")
    assert not store.has(hashlib.sha256(first_inrelease).hexdigest())
    for p in (tmp_path / "data/mirrors/apt/up/current").rglob("*"):
        if p.is_file():
            p.read_bytes()  # every file of the published snapshot is still there
    assert cli("mirror", "gc").err.startswith("removed 0 blobs")


def test_second_sync_while_one_runs_is_409(up: World, make_ctx: Callable[..., Any],
                                           auth: Callable[[str], dict[str, str]]) -> None:
    big = up.add("big", payload=200_000)
    up.repo.publish()
    path = "/pool/main/b/" + big.name
    up.handler.stall[path] = 50_000  # the first sync hangs mid-file until released
    ctx = make_ctx(mirrors=[up.mirror()])
    op = auth("operator")
    with TestClient(create_app(ctx)) as c:
        first = c.post("/api/v1/mirrors/up/sync", headers=op).json()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(p == path for p, _ in up.handler.log):
            time.sleep(0.05)
        running = c.get(f"/api/v1/mirrors/up/jobs/{first['id']}", headers=op).json()
        assert running["status"] == "running"
        r = c.post("/api/v1/mirrors/up/sync", headers=op)
        assert r.status_code == 409 and r.json()["detail"] == f"mirror up is already syncing (job {first['id']})"
        del up.handler.stall[path]  # the stalled response ends short: this sync fails, resumable
        j = wait_job(c, op, "up", first["id"])
        assert j["status"] == "failed"
        j = wait_job(c, op, "up", c.post("/api/v1/mirrors/up/sync", headers=op).json()["id"])
        assert j["status"] == "succeeded", j


def test_cli_export_import(up: World, cli: Callable[..., Any], config_file: Callable[..., Path],
                           tmp_path: Path) -> None:
    config_file(mirrors=[up.mirror()])
    assert cli("mirror", "export", "up", str(tmp_path / "b")).err.startswith("dgxie: error: mirror up has no published")
    assert cli("mirror", "sync", "up", "-q").code == 0
    r = cli("mirror", "export", str(tmp_path / "b"))
    assert r.code == 1 and r.err == "dgxie: error: usage: dgxie mirror export NAME... DIR\n"
    r = cli("mirror", "export", "up", str(tmp_path / "b"))
    assert r.code == 0 and "5 blobs" in r.err
    r = cli("mirror", "export", "up", str(tmp_path / "b"))
    assert r.code == 1 and "is not an empty directory" in r.err
    r = cli("mirror", "import", str(tmp_path / "nothing"))
    assert r.code == 1 and "not a complete dgxie mirror bundle" in r.err
    (tmp_path / "b/dgxie-bundle.json").write_text((tmp_path / "b/dgxie-bundle.json").read_text().replace("up", "uq"))
    r = cli("mirror", "import", str(tmp_path / "b"))
    assert r.code == 1 and "checksum mismatch" in r.err
