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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dgxie import db
from dgxie.app import create_app
from dgxie.events import list_events
from tests.support.bmc import EXTRA_UUID, INSECURE_HTTP, dgxie_process, extra_system, free_port, sushy_emulator
from tests.support.doc_console import console_steps, missing
from tests.support.paths import REPO

N = 5


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


def test_api_bulk_power_job(make_ctx: Any, auth: Any, emulator: tuple[str, Path]) -> None:
    url, _ = emulator
    ctx = make_ctx(bmc=INSECURE_HTTP | {"retries": 0})
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
        # a second job while one runs is a 409; stopping the jobs (shutdown) cancels at the next wave
        r = client.post("/api/v1/power", headers=op, json={
            "action": "on", "selector": {"kind": "tags", "values": ["api"]}, "batch": 1, "interval": 600})
        assert r.status_code == 202
        second = r.json()["id"]
        r = client.post("/api/v1/power", headers=op, json={"action": "on", "selector": {"kind": "all"}})
        assert r.status_code == 409 and f"bulk power job {second} is still running" in r.json()["detail"]
        assert ctx.service("power-jobs") is ctx.power_jobs  # the server's shutdown stops it, as below
        ctx.power_jobs.cancel()
        deadline = time.monotonic() + 30
        while (job := client.get(f"/api/v1/power/{second}", headers=op).json())["status"] == "running" \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert job["status"] == "cancelled" and job["waves_started"] == 1
        assert [n["status"] for n in job["nodes"]][1:] == ["pending", "pending"]
        assert client.get("/api/v1/power/999", headers=op).status_code == 404
        assert [j["id"] for j in client.get("/api/v1/power", headers=op).json()] == [second, second - 1]
        metrics = client.get("/metrics").text
        assert "dgxie_power_waves_total 3.0" in metrics
        assert 'dgxie_power_nodes_total{outcome="failed"}' not in metrics


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
