"""Bulk power in waves against a real Redfish peer: sushy-emulator (fake driver, basic auth) with five
extra systems, plus one node whose BMC address has nobody listening and one without a BMC.

Waves are checked from both ends: the command's own timing (batch 2, interval 1 s over 5 nodes
takes >= 2 s) and the order in which the emulator logged the ComputerSystem.Reset POSTs (every
reset of wave k before any of wave k+1)."""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dgxie import db
from dgxie.app import create_app
from dgxie.events import list_events
from dgxie.jobs import queue
from dgxie.models import Job
from dgxie.nodes import power_jobs, power_waves
from dgxie.nodes.power_waves import PowerSelector
from tests.support.bmc import EXTRA_UUID, INSECURE_HTTP, dgxie_process, extra_system, free_port, sushy_emulator
from tests.support.doc_console import console_steps, missing
from tests.support.paths import REPO

N = 5
FAST = {"heartbeat_seconds": 0.2, "expire_seconds": 5.0}  # cancels seen within 0.2 s; no false takeover on a busy CI


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("sushy-waves")
    with sushy_emulator(tmp, extra=N) as url:
        yield url, tmp / "sushy-emu" / "emulator.log"


def resets(log: Path, since: int) -> list[int]:
    """The extra systems (1..N) reset, in the order the emulator logged them, from byte `since`."""
    text = log.read_bytes()[since:].decode(errors="replace")
    pat = re.escape(EXTRA_UUID.format(0)[:-12]) + r"(\d{12})/Actions/ComputerSystem\.Reset"
    return [int(m.group(1)) for m in re.finditer(r"POST [^ ]*" + pat, text)]


def enroll(cli: Any, url: str, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("password\n")
    for i in range(1, N + 1):
        r = cli("node", "add", f"wave{i}", "--mac", f"00:5c:52:31:3c:{i:02x}", "--bmc", url + extra_system(i),
                "--bmc-user", "admin", "--bmc-password-file", str(pw), "--tag", "waves")
        assert r.code == 0, r.err
    dead = f"http://127.0.0.1:{free_port()}/redfish/v1/Systems/1"  # nobody listens there
    assert cli("node", "add", "deadbmc", "--mac", "00:5c:52:31:3d:01", "--bmc", dead, "--bmc-user", "admin",
               "--bmc-password-file", str(pw)).code == 0
    assert cli("node", "add", "nobmc", "--mac", "00:5c:52:31:3d:02").code == 0


def test_cli_powers_in_waves(cli: Any, config_file: Any, make_ctx: Any, emulator: tuple[str, Path],
                             tmp_path: Path) -> None:
    url, log = emulator
    config_file(bmc=INSECURE_HTTP | {"retries": 0})
    enroll(cli, url, tmp_path)
    since = log.stat().st_size
    t0 = time.monotonic()
    r = cli("node", "power", "on", "--tag", "waves", "--batch", "2", "--interval", "1")
    took = time.monotonic() - t0
    assert r.code == 0, (r.out, r.err, log.read_bytes()[since:].decode(errors="replace")[-3000:])
    assert took >= 2.0, took
    lines = r.out.splitlines()
    assert lines[0] == "wave 1/3: power on 2 node(s): wave1 wave2"
    assert [ln for ln in lines if ln.startswith("wave ")] == [
        "wave 1/3: power on 2 node(s): wave1 wave2", "wave 2/3: power on 2 node(s): wave3 wave4",
        "wave 3/3: power on 1 node(s): wave5"]
    assert all(re.fullmatch(r"  wave\d: power on (done; the BMC reports on|requested; the BMC still reports off)", ln)
               for ln in lines if ln.startswith("  ")), lines
    assert lines[-1].startswith("power on: 5 node(s) in 3/3 wave(s): ") and "0 failed" in lines[-1]
    order = resets(log, since)
    assert sorted(order) == [1, 2, 3, 4, 5], order
    assert sorted(order[:2]) == [1, 2] and sorted(order[2:4]) == [3, 4] and order[4] == 5, order
    shown = json.loads(cli("node", "show", "wave3", "--json", "--events").out)
    assert shown["events"][-1]["kind"] == "node.power"
    with db.session_scope(make_ctx().sessions) as s:
        bulk = list_events(s, kind="power.bulk")
    assert len(bulk) == 1 and bulk[0].data["batch"] == 2 and bulk[0].data["selector"] == {
        "kind": "tags", "values": ["waves"]} and bulk[0].actor.startswith("cli:")


def test_cli_failure_path_and_bad_selectors(cli: Any, config_file: Any, emulator: tuple[str, Path],
                                            tmp_path: Path) -> None:
    url, _ = emulator
    config_file(bmc=INSECURE_HTTP | {"retries": 0})
    enroll(cli, url, tmp_path)
    r = cli("node", "power", "off", "--all", "--batch", "3", "--interval", "0", "--json")
    assert r.code == 1
    assert r.err.splitlines()[-1] == "dgxie: error: power off: 1 node(s) failed"
    job = json.loads(r.out)
    by = {n["node"]: n for n in job["nodes"]}
    assert by["deadbmc"]["status"] == "failed" and "BMC unreachable" in by["deadbmc"]["reason"]
    assert "\n" not in by["deadbmc"]["reason"]
    assert by["nobmc"] == {"node": "nobmc", "wave": None, "status": "skipped", "power": None, "reason": "no BMC"}
    assert {by[f"wave{i}"]["status"] for i in range(1, N + 1)} <= {"done", "requested"}
    assert job["waves"] == 2 and job["waves_started"] == 2 and job["status"] == "finished"
    assert "skipped (no BMC): nobmc" in r.err and "deadbmc: power off failed: " in r.err
    shown = json.loads(cli("node", "show", "deadbmc", "--json", "--events").out)
    assert shown["events"][-1]["kind"] == "node.power.failed"
    for args, says in ((("on",), "give NODE ACTION for one node, or ACTION with one of --all"),
                       (("on", "--all", "--tag", "x"), "use one selector, not --all and --tag"),
                       (("on", "--state", "bogus"), "state: unknown state 'bogus'"),
                       (("on", "--tag", "nosuchtag"), "selector: no node matches tags=nosuchtag"),
                       (("status", "--all"), "action: must be one of on, off, cycle"),
                       (("on", "--all", "--batch", "0"), "batch: must be 1..10000"),
                       (("on", "--all", "--interval", "-1"), "interval: must be 0..3600 seconds"),
                       (("wave1", "on", "--all"), "--all: not with a NODE"),
                       (("wave1", "on", "--batch", "2"), "--batch: not with a NODE")):
        r = cli("node", "power", *args)
        assert r.code == 1 and r.out == "", args
        assert r.err.count("\n") == 1 and says in r.err, (args, r.err)


def job_actor(s: Any, job_id: int) -> str:
    row = s.get(Job, job_id)
    assert row is not None and row.actor.startswith("token:"), row.actor if row else None
    return str(row.actor)


def wait_for(client: TestClient, job_id: int, headers: dict[str, str], cond: Callable[[dict[str, Any]], bool],
             timeout: float = 30) -> dict[str, Any]:
    """GET the job until `cond(job)` (bounded by `timeout`); the job."""
    deadline = time.monotonic() + timeout
    while not cond(job := client.get(f"/api/v1/power/{job_id}", headers=headers).json()):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job


def test_api_bulk_power_job(make_ctx: Any, auth: Any, emulator: tuple[str, Path]) -> None:
    url, _ = emulator
    ctx = make_ctx(bmc=INSECURE_HTTP | {"retries": 0}, instance={"id": "one"} | FAST)
    with TestClient(create_app(ctx)) as client:
        for i in range(1, 4):
            assert client.post("/api/v1/nodes", headers=auth("operator"), json={
                "hostname": f"api{i}", "mac": f"00:5c:52:31:3e:{i:02x}", "tags": ["api"],
                "bmc": {"url": url + extra_system(i), "username": "admin", "password": "password"}}).status_code == 201
        op = auth("operator")
        for body, status in (({"action": "reboot", "selector": {"kind": "all"}}, 422),
                             ({"action": "on", "selector": {"kind": "rack"}}, 422),
                             ({"action": "on", "selector": {"kind": "tags", "values": ["none"]}}, 422),
                             ({"action": "on", "selector": {"kind": "tags"}}, 422),
                             ({"action": "on", "selector": {"kind": "all"}, "batch": 0}, 422),
                             ({"action": "on", "selector": {"kind": "nodes", "values": ["nope"]}}, 404),
                             ({"action": "on", "selector": {"kind": "all"}, "extra": 1}, 422)):
            r = client.post("/api/v1/power", json=body, headers=op)
            assert r.status_code == status and list(r.json()) == ["detail"], (body, r.text)
            assert isinstance(r.json()["detail"], str)
        assert client.post("/api/v1/power", json={"action": "on", "selector": {"kind": "all"}},
                           headers=auth("viewer")).status_code == 403
        r = client.post("/api/v1/power", headers=op, json={
            "action": "on", "selector": {"kind": "tags", "values": ["api"]}, "batch": 2, "interval": 0.5})
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["waves"] == 2 and [n["wave"] for n in job["nodes"]] == [1, 1, 2]
        deadline = time.monotonic() + 60
        while (job := client.get(f"/api/v1/power/{job['id']}", headers=auth("viewer")).json())["status"] in (
                "queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job["status"] == "finished", job
        assert {n["status"] for n in job["nodes"]} <= {"done", "requested"}, job
        # a second job while one runs is a 409; a cancel (DELETE) stops it before its next wave
        r = client.post("/api/v1/power", headers=op, json={
            "action": "on", "selector": {"kind": "tags", "values": ["api"]}, "batch": 1, "interval": 600})
        assert r.status_code == 202
        second = r.json()["id"]
        r = client.post("/api/v1/power", headers=op, json={"action": "on", "selector": {"kind": "all"}})
        assert r.status_code == 409 and f"bulk power job {second} is still running" in r.json()["detail"]
        wait_for(client, second, op, lambda j: j["waves_started"] == 1 and j["nodes"][0]["status"] != "running")
        assert client.delete(f"/api/v1/power/{second}", headers=auth("viewer")).status_code == 403
        r = client.delete(f"/api/v1/power/{second}", headers=op)
        assert r.status_code == 200 and r.json()["id"] == second, r.text
        job = wait_for(client, second, op, lambda j: j["status"] not in ("queued", "running"))
        assert job["status"] == "cancelled" and job["waves_started"] == 1 and job["finished_at"]
        assert [n["status"] for n in job["nodes"]][1:] == ["pending", "pending"]
        r = client.delete(f"/api/v1/power/{second}", headers=op)
        assert r.status_code == 409 and r.json() == {"detail": f"bulk power job {second} has ended (cancelled)"}
        assert client.delete("/api/v1/power/999", headers=op).status_code == 404
        assert client.get("/api/v1/power/999", headers=op).status_code == 404
        assert [j["id"] for j in client.get("/api/v1/power", headers=op).json()] == [second, second - 1]
        metrics = client.get("/metrics").text
        assert "dgxie_power_waves_total 3.0" in metrics
        assert 'dgxie_job_executions_total{kind="power.bulk"} 2.0' in metrics
        with ctx.sessions() as s:
            bulk = list_events(s, kind="power.bulk")
            assert len(bulk) == 2 and {e.actor for e in bulk} == {job_actor(s, second)}
        assert 'dgxie_power_nodes_total{outcome="failed"}' not in metrics


def add_nodes(client: TestClient, headers: dict[str, str], url: str, name: str, count: int) -> None:
    for i in range(1, count + 1):
        assert client.post("/api/v1/nodes", headers=headers, json={
            "hostname": f"{name}{i}", "mac": f"00:5c:52:31:40:{i:02x}", "tags": [name],
            "bmc": {"url": url + extra_system(i), "username": "admin", "password": "password"}}).status_code == 201


def test_jobs_are_shared_by_instances(make_ctx: Any, auth: Any, emulator: tuple[str, Path]) -> None:
    """Two instances (two Contexts and apps, each with its job worker) on one database: a job
    created through one is seen, refused a sibling, and cancelled through the other."""
    url, _ = emulator
    a = make_ctx(bmc=INSECURE_HTTP | {"retries": 0}, instance={"id": "inst-a"} | FAST)
    b = make_ctx(bmc=INSECURE_HTTP | {"retries": 0}, instance={"id": "inst-b"} | FAST)
    op = auth("operator")
    with TestClient(create_app(a)) as ca, TestClient(create_app(b)) as cb:
        add_nodes(ca, op, url, "two", 3)
        r = ca.post("/api/v1/power", headers=op, json={
            "action": "on", "selector": {"kind": "tags", "values": ["two"]}, "batch": 1, "interval": 600})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        seen = cb.get(f"/api/v1/power/{job_id}", headers=op)
        assert seen.status_code == 200 and [(n["node"], n["wave"]) for n in seen.json()["nodes"]] == [
            ("two1", 1), ("two2", 2), ("two3", 3)]
        assert [j["id"] for j in cb.get("/api/v1/power", headers=op).json()] == [job_id]
        r = cb.post("/api/v1/power", headers=op, json={"action": "off", "selector": {"kind": "all"}})
        assert r.status_code == 409 and r.json() == {
            "detail": f"bulk power job {job_id} is still running (GET /api/v1/power/{job_id})"}
        wait_for(cb, job_id, op, lambda j: j["waves_started"] == 1 and j["nodes"][0]["status"] != "running")
        assert cb.delete(f"/api/v1/power/{job_id}", headers=op).status_code == 200
        job = wait_for(ca, job_id, op, lambda j: j["status"] not in ("queued", "running"))
        assert job["status"] == "cancelled" and job["waves_started"] == 1, job
        assert job["nodes"][0]["status"] in ("done", "requested") and job["nodes"][1]["status"] == "pending"
    with a.sessions() as s:
        row = s.get(Job, job_id)
        assert row is not None and row.executions == 1 and row.owner in ("inst-a", "inst-b")


def test_takeover_resumes_after_the_started_waves(make_ctx: Any, auth: Any, emulator: tuple[str, Path]) -> None:
    """An instance died running wave 2 of 3 (node 1 done, node 2's call in flight): the instance
    that takes the job over runs wave 3 only (no second reset of nodes 1 and 2), node 1 keeps its
    outcome and node 2's unknown outcome is `failed`."""
    url, log = emulator
    ctx = make_ctx(bmc=INSECURE_HTTP | {"retries": 0}, instance={"id": "alive"} | FAST)
    op = auth("operator")
    setup = make_ctx(bmc=INSECURE_HTTP | {"retries": 0}, instance={"id": "setup"})  # stopped before "dead" claims
    with TestClient(create_app(setup)) as client:
        add_nodes(client, op, url, "res", 3)
    with db.session_scope(ctx.sessions) as s:
        plan = power_waves.plan(s, PowerSelector(kind="tags", values=["res"]), "on", 1, 0)
        job_id = queue.enqueue(s, power_jobs.KIND, power_jobs.payload(plan), key=power_jobs.KIND, actor="test").id
    assert queue.claim(ctx.sessions, "dead", [power_jobs.KIND], expire=5.0) is not None
    plan.started_at, plan.waves_started = datetime.now(UTC), 2
    plan.nodes[0].status, plan.nodes[0].power = "done", "on"
    plan.nodes[1].status = "running"
    assert queue.save_progress(ctx.sessions, "dead", job_id, power_jobs.progress(plan, time.time() - 5))
    since = log.stat().st_size
    with TestClient(create_app(ctx)) as client:
        job = wait_for(client, job_id, op, lambda j: j["status"] not in ("queued", "running"))
        assert job["status"] == "finished" and job["waves_started"] == 3, job
        by = {n["node"]: n for n in job["nodes"]}
        assert by["res1"] == {"node": "res1", "wave": 1, "status": "done", "power": "on", "reason": None}
        assert by["res2"]["status"] == "failed" and by["res2"]["reason"] == power_waves.INTERRUPTED
        assert by["res3"]["status"] in ("done", "requested"), job
        assert "dgxie_power_waves_total 1.0" in client.get("/metrics").text
    assert resets(log, since) == [3]
    with ctx.sessions() as s:
        row = s.get(Job, job_id)
        assert row is not None and row.executions == 2 and row.owner == "alive"
        assert list_events(s, kind="power.bulk") == []  # the request's event is the first run's, never repeated


def test_a_job_cancelled_while_its_owner_is_dead_is_not_resumed(make_ctx: Any, auth: Any,
                                                                  emulator: tuple[str, Path]) -> None:
    """A cancel asked while the instance running the job is dead: the instance taking it over
    sees the request at its claim and starts no further wave (interval 0: it would at once)."""
    url, log = emulator
    ctx = make_ctx(bmc=INSECURE_HTTP | {"retries": 0}, instance={"id": "alive"} | FAST)
    op = auth("operator")
    with TestClient(create_app(make_ctx(bmc=INSECURE_HTTP | {"retries": 0}, instance={"id": "setup"}))) as client:
        add_nodes(client, op, url, "cx", 2)
        with db.session_scope(ctx.sessions) as s:
            plan = power_waves.plan(s, PowerSelector(kind="tags", values=["cx"]), "on", 1, 0)
            job_id = queue.enqueue(s, power_jobs.KIND, power_jobs.payload(plan), key=power_jobs.KIND, actor="t").id
    assert queue.claim(ctx.sessions, "dead", [power_jobs.KIND], expire=5.0) is not None
    plan.started_at, plan.waves_started, plan.nodes[0].status = datetime.now(UTC), 1, "done"
    assert queue.save_progress(ctx.sessions, "dead", job_id, power_jobs.progress(plan, time.time() - 5))
    since = log.stat().st_size
    with TestClient(create_app(ctx)) as client:
        assert client.delete(f"/api/v1/power/{job_id}", headers=op).status_code == 200
        job = wait_for(client, job_id, op, lambda j: j["status"] not in ("queued", "running"))
        assert job["status"] == "cancelled" and job["waves_started"] == 1, job
        assert [n["status"] for n in job["nodes"]] == ["done", "pending"]
    assert resets(log, since) == []


def test_operator_guide_waves_as_written(cli: Any, config_file: Any, emulator: tuple[str, Path],
                                         tmp_path: Path) -> None:
    """docs/operator-guide.md, "Power on in waves": its command, run as written in its own process,
    prints what the guide shows (three nodes with a BMC, one without, all tagged rack7)."""
    url, _ = emulator
    config = config_file(bmc=INSECURE_HTTP | {"retries": 0})
    pw = tmp_path / "pw"
    pw.write_text("password\n")
    for i in range(1, 4):
        assert cli("node", "add", f"gpu0{i}", "--mac", f"00:5c:52:31:3f:{i:02x}", "--bmc", url + extra_system(i),
                   "--bmc-user", "admin", "--bmc-password-file", str(pw), "--tag", "rack7").code == 0
    assert cli("node", "add", "gpu04", "--mac", "00:5c:52:31:3f:04", "--tag", "rack7").code == 0
    steps = console_steps((REPO / "docs" / "operator-guide.md").read_text(), section="## Power on in waves")
    assert len(steps) == 1 and steps[0].command.startswith("dgxie node power on --tag rack7 ")
    r = dgxie_process(config, tmp_path, *shlex.split(steps[0].command)[1:])
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert not missing(steps[0], out), (missing(steps[0], out), out)
    assert "Traceback" not in out and "Warning" not in out
