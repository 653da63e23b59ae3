"""Firmware updates as jobs (issue 15, part 5): POST/GET/DELETE /api/v1/firmware/updates run by the
server's job worker (the job queue), per-node progress with Redfish Task states, cancel of the nodes not started,
resume after an interrupted runner without flashing a done node again, and the CLI following a job.

The BMCs are tests/support/update_peer.py (see tests/integration/test_bmc_update.py for why: no
emulator here implements UpdateService/TaskService); it really fetches the package from dgxie's
HTTP server on loopback. Each Task goes New -> Running -> Completed|Exception, one step per GET.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select, update

from dgxie import db, tokens
from dgxie.app import create_app
from dgxie.context import Context
from dgxie.firmware import packages, service, update_jobs
from dgxie.firmware.update import run_update
from dgxie.firmware.update_jobs import KIND, UpdateIn
from dgxie.jobs import queue
from dgxie.models import Event, FirmwareUpdateNode, Job
from dgxie.models.types import utcnow
from dgxie.nodes.schemas import BmcIn, NodeCreate
from dgxie.nodes.service import create_node, get_node
from tests.support.bmc import INSECURE_HTTP, free_port
from tests.support.paths import REPO
from tests.support.update_peer import Peer, update_peer

FW = "/redfish/v1/UpdateService/FirmwareInventory"


class Server:
    def __init__(self, url: str, ctx: Context) -> None:
        self.url, self.ctx = url, ctx

    def headers(self, role: str) -> dict[str, str]:
        with db.session_scope(self.ctx.sessions) as s:
            _, plain = tokens.create_token(s, name=f"fw-{role}-{time.monotonic_ns()}", role=role, actor="test")
        return {"Authorization": f"Bearer {plain}"}

    def package(self, tmp: Path, version: str) -> str:
        image = tmp / f"bmc-{version}.bin"
        image.write_text(f"VERSION={version}\n")
        pkg = packages.stage(self.ctx.site, image)
        return f"{pkg.sha256}/{pkg.name}"

    def node(self, name: str, i: int, bmc: str | None) -> None:
        add_node(self.ctx, name, i, bmc)


def add_node(ctx: Context, name: str, i: int, bmc: str | None) -> None:
    with db.session_scope(ctx.sessions) as s:
        create_node(s, ctx.site, NodeCreate(hostname=name, mac=f"aa:00:00:00:15:{i:02x}", tags=["rack7"],
                                            bmc=BmcIn(url=bmc) if bmc else None), actor="test")


@pytest.fixture
def server(make_ctx: Any, tmp_path: Path) -> Iterator[Server]:
    """dgxie serving packages to the peers and running firmware update jobs (its job worker)."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "updpeer.yaml").write_text('platform: updpeer\nmodels: [UpdPeer]\ncomponents:\n  BMC: "2.0.0"\n')
    ctx = make_ctx(public_url=public, bmc=INSECURE_HTTP, firmware={"baselines": str(baselines)})
    srv = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    try:
        yield Server(public, ctx)
    finally:
        srv.should_exit = True
        t.join(10)


def wait_for(fn: Callable[[], Any], what: str, within: float = 30) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def peers(st: ExitStack, n: int, fail: int | None = None) -> list[tuple[str, Peer]]:
    return [st.enter_context(update_peer({"BMC": "1.0.0"}, fail=(i == fail))) for i in range(n)]


def test_api_job_runs_to_done_with_task_progress(server: Server, tmp_path: Path) -> None:
    pkg = server.package(tmp_path, "2.0.0")
    op, viewer = server.headers("operator"), server.headers("viewer")
    api = f"{server.url}/api/v1/firmware/updates"
    with ExitStack() as st:
        ps = peers(st, 2)
        for i, (url, _) in enumerate(ps):
            server.node(f"g{i}", i, url)
        server.node("nobmc", 9, None)
        body = {"nodes": ["g1", "g0", "nobmc"], "package": pkg, "targets": [f"{FW}/BMC"], "batch": 1, "poll": 0.5}
        assert httpx.post(api, json=body, headers=viewer).status_code == 403
        r = httpx.post(api, json=body, headers=op)
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["status"] in ("queued", "running")
        assert [(n["node"], n["wave"], n["status"]) for n in job["nodes"]][-1] == ("nobmc", None, "skipped")
        assert [n["node"] for n in job["nodes"] if n["wave"]] == ["g1", "g0"]  # the order given, a wave each
        url = f"{api}/{job['id']}"
        seen: set[tuple[str, str | None, int | None]] = set()

        def ended() -> Any:
            got = httpx.get(url, headers=viewer).json()
            seen.update((n["status"], n["task_state"], n["percent"]) for n in got["nodes"])
            return got if got["status"] in ("done", "failed", "cancelled") else None

        done = wait_for(ended, "the job to end")
        assert done["status"] == "done", done
        assert done["counts"] == {"done": 2, "skipped": 1}
        for n in done["nodes"][:2]:
            assert n["task_state"] == "Completed" and n["percent"] == 100 and n["task"].startswith("/redfish/v1/Task")
            assert n["started_at"] and n["finished_at"]
        assert all(p.versions["BMC"] == "2.0.0" and len(p.tasks) == 1 for _, p in ps)
        assert ("running", "Running", 50) in seen  # the Task's progress, read while it ran
        assert httpx.get(api, headers=viewer).json()[0]["id"] == job["id"]
        r = httpx.delete(url, headers=op)
        assert r.status_code == 409 and "has ended (done)" in r.json()["detail"]
    with db.session_scope(server.ctx.sessions) as s:
        kinds = [e.kind for e in s.scalars(select(Event).where(Event.kind.like("firmware.update%")).order_by(Event.id))]
    assert kinds[0] == "firmware.update.queued" and kinds[1] == "firmware.update.started"
    assert kinds[-1] == "firmware.update.finished"
    assert kinds.count("firmware.update.node.started") == 2 and kinds.count("firmware.update.node.done") == 2
    with db.session_scope(server.ctx.sessions) as s:  # run as one job of the queue, by this instance, once
        qjob = s.get(Job, update_jobs.get(s, job["id"]).job_id)
        assert qjob is not None and (qjob.kind, qjob.status, qjob.executions, qjob.owner) == (
            KIND, "done", 1, server.ctx.site.instance.id)
    assert f'dgxie_job_executions_total{{kind="{KIND}"}} 1.0' in httpx.get(f"{server.url}/metrics").text


def test_baseline_updates_only_the_outdated_nodes(server: Server, tmp_path: Path) -> None:
    """`baseline`: against the site's UpdPeer baseline (BMC 2.0.0), the outdated node is updated,
    the compliant one and the never-scanned one are skipped with the reason, untouched."""
    pkg = server.package(tmp_path, "2.0.0")
    op = server.headers("operator")
    with ExitStack() as st:
        (u0, p0), (u1, p1), (u2, p2) = (st.enter_context(update_peer({"BMC": v})) for v in ("1.0.0", "2.0.0", "1.0.0"))
        for i, url in enumerate((u0, u1, u2)):
            server.node(f"b{i}", 30 + i, url)
        with db.session_scope(server.ctx.sessions) as s:
            service.scan(s, server.ctx.site, [get_node(s, "b0"), get_node(s, "b1")], actor="test")
        r = httpx.post(f"{server.url}/api/v1/firmware/updates", headers=op,
                       json={"tags": ["rack7"], "package": pkg, "baseline": True, "targets": [f"{FW}/BMC"],
                             "poll": 0.05})
        assert r.status_code == 202, r.text
        assert [(n["node"], n["status"], n["message"]) for n in r.json()["nodes"]] == [
            ("b0", "pending", ""), ("b1", "skipped", "baseline: already compliant"),
            ("b2", "skipped", "baseline: cannot judge (no complete firmware scan yet)")]
        url = f"{server.url}/api/v1/firmware/updates/{r.json()['id']}"
        job = wait_for(lambda: (j := httpx.get(url, headers=op).json())["status"] == "done" and j, "the end")
        assert job["counts"] == {"done": 1, "skipped": 2}
        assert (p0.versions["BMC"], len(p0.tasks), p1.tasks, p2.tasks) == ("2.0.0", 1, {}, {})


def test_api_bad_input_is_4xx_json(server: Server, tmp_path: Path) -> None:
    pkg = server.package(tmp_path, "2.0.0")
    op = server.headers("operator")
    api = f"{server.url}/api/v1/firmware/updates"
    server.node("b0", 1, None)
    bad = [({"nodes": ["b0"], "tags": ["x"], "package": pkg}, 422, "nodes or tags"),
           ({"package": pkg}, 422, "nodes or tags"),
           ({"nodes": ["b0"], "package": f"{'0' * 64}/nope.bin"}, 422, "no staged package"),
           ({"nodes": ["b0"], "package": pkg, "batch": 0}, 422, "batch"),
           ({"nodes": ["b0"], "package": pkg, "poll": 0}, 422, "poll"),
           ({"nodes": ["b0"], "package": pkg, "surprise": 1}, 422, "surprise"),
           ({"nodes": ["nope"], "package": pkg}, 404, "nope"),
           ({"tags": ["no-such-tag"], "package": pkg}, 422, "no node matches")]
    for body, status, words in bad:
        r = httpx.post(api, json=body, headers=op)
        assert r.status_code == status and words in r.json()["detail"], (body, r.text)
    assert httpx.get(f"{api}/999", headers=op).json() == {"detail": "no firmware update 999"}
    assert httpx.delete(f"{api}/999", headers=op).status_code == 404
    assert httpx.get(f"{api}/0", headers=op).status_code == 422
    assert httpx.delete(f"{api}/1", headers=server.headers("viewer")).status_code == 403
    assert httpx.get(api).status_code == 401


def test_cancel_reaches_the_nodes_not_started(server: Server, tmp_path: Path) -> None:
    """A DELETE while the first wave runs: the later nodes are cancelled at once and never
    touched; the node in flight completes; the job ends `cancelled`."""
    pkg = server.package(tmp_path, "2.0.0")
    op = server.headers("operator")
    api = f"{server.url}/api/v1/firmware/updates"
    with ExitStack() as st:
        ps = peers(st, 3)
        for i, (url, _) in enumerate(ps):
            server.node(f"c{i}", i, url)
        r = httpx.post(api, json={"tags": ["rack7"], "package": pkg, "batch": 1, "poll": 0.5}, headers=op)
        url = f"{api}/{r.json()['id']}"
        wait_for(lambda: httpx.get(url, headers=op).json()["nodes"][0]["task"], "c0's task")
        r = httpx.delete(url, headers=op)
        assert r.status_code == 200, r.text
        assert r.json()["cancel_requested"] and [n["status"] for n in r.json()["nodes"]][1:] == ["cancelled"] * 2
        job = wait_for(lambda: (j := httpx.get(url, headers=op).json())["status"] != "running" and j, "the end")
        assert job["status"] == "cancelled" and job["counts"] == {"done": 1, "cancelled": 2}
        assert ps[0][1].versions["BMC"] == "2.0.0"
        assert all(p.tasks == {} and p.versions["BMC"] == "1.0.0" for _, p in ps[1:])  # never touched


def test_cancel_of_a_queued_job_and_claim_runs_once(make_ctx: Any, tmp_path: Path) -> None:
    ctx = make_ctx()  # no server: nothing runs the job
    image = tmp_path / "x.bin"
    image.write_text("VERSION=2\n")
    pkg = packages.stage(ctx.site, image)
    add_node(ctx, "q0", 1, "https://127.0.0.1:9")
    with db.session_scope(ctx.sessions) as s:
        a = update_jobs.create(s, ctx.site, UpdateIn(nodes=["q0"], package=f"{pkg.sha256}/{pkg.name}"),
                               actor="t").id
        b = update_jobs.create(s, ctx.site, UpdateIn(nodes=["q0"], package=f"{pkg.sha256}/{pkg.name}"),
                               actor="t").id
    with db.session_scope(ctx.sessions) as s:
        job = update_jobs.cancel(s, a, actor="t")
        assert job.status == "cancelled"
    with db.session_scope(ctx.sessions) as s:
        assert [r.status for r in update_jobs.rows_of(s, a)] == ["cancelled"]
        qa, qb = update_jobs.get(s, a).job_id, update_jobs.get(s, b).job_id
        assert s.get(Job, qa).status == "cancelled"  # its queue job too: never claimed
    sessions = ctx.sessions
    assert queue.claim(sessions, "r1", [KIND], expire=60, job_id=qa) is None  # a cancelled job is never run
    got = queue.claim(sessions, "r1", [KIND], expire=60)
    assert got is not None and got.id == qb and got.payload == {"update": b} and got.attempt == 1
    assert queue.claim(sessions, "r2", [KIND], expire=60) is None  # claimed: runs once
    time.sleep(0.01)
    again = queue.claim(sessions, "r2", [KIND], expire=0)  # r1 presumed dead: taken over
    assert again is not None and again.id == qb and again.attempt == 2
    assert queue.beat(sessions, "r1", [qb]) == {qb: False}  # r1's heartbeat is refused now
    assert not queue.finish(sessions, "r1", qb, "done")  # and so is its late outcome


class Crash(Exception):
    pass


def test_resume_after_interruption_does_not_flash_a_done_node(server: Server, tmp_path: Path) -> None:
    """A runner dies after wave 1 (g0 done) while g1's Task is in flight: the job taken over
    follows g1's known Task (no second update) and flashes only g2."""
    pkg = server.package(tmp_path, "2.0.0")
    sessions, site = server.ctx.sessions, server.ctx.site
    with ExitStack() as st:
        ps = peers(st, 3)
        for i, (url, _) in enumerate(ps):
            server.node(f"r{i}", 20 + i, url)
        with db.session_scope(sessions) as s:
            made = update_jobs.create(s, site, UpdateIn(nodes=["r0", "r1", "r2"], package=pkg, poll=0.05),
                                      actor="t")
            uid, qid = made.id, made.job_id
            # held by a runner that is about to die (so the server's worker leaves it alone for now)
            s.execute(update(Job).where(Job.id == qid).values(status="running", owner="dead", heartbeat_at=utcnow(),
                                                              attempts=1, executions=1))

        def dies_after_wave_one() -> None:
            with db.session_scope(sessions) as s:
                if any(r.status == "done" for r in update_jobs.rows_of(s, uid)):
                    raise Crash

        with pytest.raises(Crash):
            run_update(sessions, site, uid, cancelled=lambda: False, heartbeat=dies_after_wave_one)
        assert ps[0][1].versions["BMC"] == "2.0.0" and len(ps[0][1].tasks) == 1
        # r1's update was handed to its BMC just before the crash: a Task exists, the row knows it
        r = httpx.post(f"{ps[1][0]}/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
                       json={"ImageURI": packages.find(site, *pkg.split("/")).url(site)})
        with db.session_scope(sessions) as s:
            row = s.scalars(select(FirmwareUpdateNode).where(FirmwareUpdateNode.update_id == uid,
                                                             FirmwareUpdateNode.hostname == "r1")).one()
            row.status, row.task = "running", r.json()["@odata.id"]
        assert queue.claim(sessions, "next", [KIND], expire=60, job_id=qid) is None  # fresh: not taken over yet
        time.sleep(0.01)
        got = queue.claim(sessions, "next", [KIND], expire=0, job_id=qid)  # "dead" presumed dead: taken over
        assert got is not None and got.attempt == 2
        run_update(sessions, site, uid, cancelled=lambda: False, heartbeat=lambda: None)
        with db.session_scope(sessions) as s:
            job = update_jobs.to_out(s, update_jobs.get(s, uid))
            kinds = [e.kind for e in s.scalars(select(Event).where(Event.kind.like("firmware.update.%")))]
        assert job.status == "done", job
        assert [(n.node, n.status, n.task_state) for n in job.nodes] == [
            ("r0", "done", "Completed"), ("r1", "done", "Completed"), ("r2", "done", "Completed")]
        assert [len(p.tasks) for _, p in ps] == [1, 1, 1]  # nobody flashed twice
        assert all(p.versions["BMC"] == "2.0.0" for _, p in ps)
        assert kinds.count("firmware.update.started") == 1 and kinds.count("firmware.update.resumed") == 1
        assert kinds.count("firmware.update.node.done") == 3


def test_cli_follows_the_job_with_exit_codes(cli: Any, config_file: Any, server: Server, tmp_path: Path) -> None:
    config_file(public_url=server.url, bmc=INSECURE_HTTP)
    image = tmp_path / "bmc-3.0.0.bin"
    image.write_text("VERSION=3.0.0\n")
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    assert cli("firmware", "stage", str(image)).code == 0
    with ExitStack() as st:
        (u0, p0), (u1, p1) = peers(st, 2, fail=1)
        assert cli("node", "add", "k0", "--mac", "aa:00:00:00:17:01", "--bmc", u0, "--tag", "lab").code == 0
        assert cli("node", "add", "k1", "--mac", "aa:00:00:00:17:02", "--bmc", u1).code == 0
        r = cli("firmware", "update", "--package", f"{sha}/{image.name}")
        assert r.code == 1 and r.err.startswith("dgxie: error: name nodes or tags"), r.err
        r = cli("firmware", "update", "k0", "--package", f"{sha}/nope.bin")
        assert r.code == 1 and "no staged package" in r.err
        r = cli("firmware", "update", "k0", "--package", f"{sha}/{image.name}", "--batch", "0")
        assert r.code == 1 and "batch" in r.err
        # the server's job worker takes the job (default --wait-server 3); the CLI follows it
        r = cli("firmware", "update", "--tag", "lab", "--package", f"{sha}/{image.name}", "--poll", "0.05")
        assert r.code == 0, r.err
        assert "k0: done (Completed) - updated" in r.out
        assert "update 1" in r.err and "firmware update 1 done: 1 updated, 0 failed" in r.err, r.err
        assert p0.versions["BMC"] == "3.0.0"
        r = cli("firmware", "update", "k1", "--package", f"{sha}/{image.name}", "--poll", "0.05", "--wait-server",
                "0", "--json")
        assert r.code == 2 and "failed: 0 updated, 1 failed" in r.err
        job = json.loads(r.out)
        assert job["id"] == 2 and job["status"] == "failed" and job["nodes"][0]["message"] == "image rejected"
        assert p1.versions["BMC"] == "1.0.0"


def test_cli_ctrl_c_cancels_the_nodes_not_started(config_file: Any, server: Server, tmp_path: Path) -> None:
    """`dgxie firmware update` in its own process running the job itself; SIGINT while the first
    node's Task runs: the two later nodes are cancelled (never touched), the first completes,
    exit 2 with the job (`cancelled`) as JSON."""
    cfg = config_file(public_url=server.url, bmc=INSECURE_HTTP)
    pkg = server.package(tmp_path, "2.0.0")
    with ExitStack() as st:
        ps = peers(st, 3)
        for i, (url, _) in enumerate(ps):
            server.node(f"i{i}", 40 + i, url)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), "DGXIE_CONFIG": str(cfg),
               "HOME": str(tmp_path)}
        p = subprocess.Popen([sys.executable, "-m", "dgxie", "firmware", "update", "i0", "i1", "i2", "--package", pkg,
                              "--poll", "0.5", "--wait-server", "0", "--json"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            def first_task() -> bool:
                with db.session_scope(server.ctx.sessions) as s:
                    return any(r.task for j in update_jobs.list_jobs(s) for r in update_jobs.rows_of(s, j.id))

            wait_for(first_task, "i0's task")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 2, err
        assert "cancelled the nodes not started" in err and "cancelled: 1 updated, 0 failed" in err
        job = json.loads(out)
        assert job["status"] == "cancelled" and [n["status"] for n in job["nodes"]] == ["done", "cancelled",
                                                                                         "cancelled"]
        assert ps[0][1].versions["BMC"] == "2.0.0"
        assert all(peer.tasks == {} for _, peer in ps[1:])
