"""Firmware update: stage a package served by dgxie over HTTP, SimpleUpdate(ImageURI) and
MultipartHttpPushUri, follow the Task, rescan, rolling batches stopping at the first failure.

The BMCs are tests/support/update_peer.py, a small Redfish update peer of our own following the
DMTF UpdateService/TaskService/Task schemas: no emulator available here implements updates
(sushy-static is read-only; sushy-emulator has no UpdateService). It really fetches the ImageURI
from dgxie, served by uvicorn on loopback.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from dgxie.app import create_app
from tests.support.bmc import INSECURE_HTTP, free_port
from tests.support.update_peer import update_peer

FW = "/redfish/v1/UpdateService/FirmwareInventory"


@pytest.fixture
def served(make_ctx: Any, config_file: Any) -> Iterator[str]:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    ctx = make_ctx(public_url=public)
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield public
    finally:
        server.should_exit = True
        t.join(10)


def test_rolling_update_stops_at_first_failed_batch(cli: Any, config_file: Any, served: str, tmp_path: Path) -> None:
    config_file(public_url=served, bmc=INSECURE_HTTP)
    image = tmp_path / "bmc-2.0.0.bin"
    image.write_text("VERSION=2.0.0\n")
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    assert cli("firmware", "stage", str(image), "--sha256", "0" * 64).code == 1  # wrong sha256: refused
    r = cli("firmware", "stage", str(image), "--sha256", sha, "--json")
    assert r.code == 0, r.err
    url = json.loads(r.out)["url"]
    assert url == f"{served}/firmware/packages/{sha}/bmc-2.0.0.bin"
    assert httpx.get(url).content == image.read_bytes()  # no token needed: BMCs fetch it
    assert httpx.get(f"{served}/firmware/packages/{'0' * 64}/x.bin").status_code == 404

    with ExitStack() as st:
        peers = [st.enter_context(update_peer({"BMC": "1.0.0", "BIOS": "1.0"}, fail=(i == 1))) for i in range(3)]
        pw = tmp_path / "pw"
        pw.write_text("pw")
        for i, (purl, _) in enumerate(peers):
            assert cli("node", "add", f"u{i}", "--mac", f"aa:00:00:00:05:0{i}", "--bmc", purl, "--bmc-user", "admin",
                       "--bmc-password-file", str(pw)).code == 0
        r = cli("firmware", "update", "u0", "u1", "u2", "--package", f"{sha}/bmc-2.0.0.bin", "--target",
                f"{FW}/BMC", "--batch", "2", "--poll", "0.05", "--timeout", "20", "--wait-server", "0", "--json")
        assert r.code == 2 and "failed: 1 updated, 1 failed, 1 skipped" in r.err, r.err
        job = json.loads(r.out)
        assert job["status"] == "failed" and job["error"] == "1 node(s) failed: u1"
        res = {x["node"]: x for x in job["nodes"]}
        assert res["u0"]["status"] == "done" and res["u0"]["task_state"] == "Completed"
        assert res["u1"]["status"] == "failed" and res["u1"]["task_state"] == "Exception"
        assert "image rejected" in res["u1"]["message"]
        assert res["u2"]["status"] == "skipped" and res["u2"]["message"] == "an earlier wave failed"
        assert peers[0][1].versions == {"BMC": "2.0.0", "BIOS": "1.0"} and peers[0][1].fetched == [url]
        assert peers[2][1].tasks == {} and peers[2][1].versions["BMC"] == "1.0.0"  # never touched

        rows = json.loads(cli("firmware", "report", "--format", "json", "--node", "u0").out)
        assert {x["component"]: x["installed"] for x in rows}["BMC"] == "2.0.0"  # rescanned after the task
        ev = {n: [e["kind"] for e in json.loads(cli("node", "show", n, "--json", "--events").out)["events"]]
              for n in ("u0", "u1", "u2")}
        assert "firmware.update.node.done" in ev["u0"] and "firmware.update.node.failed" in ev["u1"]
        assert "firmware.update.node.skipped" in ev["u2"] and "firmware.update.node.started" not in ev["u2"]


def test_multipart_push_update(cli: Any, config_file: Any, served: str, tmp_path: Path) -> None:
    config_file(public_url=served, bmc=INSECURE_HTTP)
    image = tmp_path / "bios-3.1.bin"
    image.write_text("VERSION=3.1\n")
    sha = json.loads(cli("firmware", "stage", str(image), "--json").out)["sha256"]
    with update_peer({"BMC": "1.0.0", "BIOS": "1.0"}) as (purl, peer):
        assert cli("node", "add", "m0", "--mac", "aa:00:00:00:06:01", "--bmc", purl).code == 0
        r = cli("firmware", "update", "m0", "--package", f"{sha}/bios-3.1.bin", "--target", f"{FW}/BIOS",
                "--multipart", "--poll", "0.05", "--wait-server", "0", "--json")
        assert r.code == 0, r.err
        assert json.loads(r.out)["nodes"][0]["task_state"] == "Completed"
        assert peer.versions == {"BMC": "1.0.0", "BIOS": "3.1"} and peer.fetched == []
    assert cli("firmware", "update", "m0", "--package", f"{'1' * 64}/nope.bin").code == 1
    # IPMI cannot update firmware: the driver says so (no BMC is contacted, so none listens here)
    assert cli("node", "add", "i0", "--mac", "aa:00:00:00:06:02", "--bmc", "ipmi://127.0.0.1:9").code == 0
    r = cli("firmware", "update", "i0", "--package", f"{sha}/bios-3.1.bin", "--wait-server", "0", "--json")
    assert r.code == 2
    res = json.loads(r.out)["nodes"][0]
    assert res["status"] == "failed" and res["message"].startswith("BMC unsupported: ipmi://127.0.0.1:9: IPMI")


def test_ready_nodes_are_drained_first_and_resumed_after(cli: Any, config_file: Any, served: str, make_ctx: Any,
                                                        tmp_path: Path) -> None:
    """Scheduler coupling (issue 7): a `ready` node's role drain hook runs before its firmware update
    and its resume hook after a successful one; a failing drain stops the rollout untouched."""
    from dgxie import db
    from dgxie.nodes import service

    marks = tmp_path / "marks"
    marks.mkdir()
    roles = {"slurmd": {"groups": ["slurm-node"], "drain": f"/usr/bin/touch {marks}/drained-{{hostname}}",
                        "resume": f"/usr/bin/touch {marks}/resumed-{{hostname}}"},
             "k8s-worker": {"groups": ["kube_node"], "drain": "/bin/false {hostname}"}}
    config_file(public_url=served, roles=roles, bmc=INSECURE_HTTP)
    image = tmp_path / "bmc-2.0.0.bin"
    image.write_text("VERSION=2.0.0\n")
    sha = json.loads(cli("firmware", "stage", str(image), "--json").out)["sha256"]
    with ExitStack() as st:
        (p0, peer0), (p1, peer1) = (st.enter_context(update_peer({"BMC": "1.0.0"})) for _ in range(2))
        assert cli("node", "add", "s0", "--mac", "aa:00:00:00:07:01", "--bmc", p0, "--role", "slurmd").code == 0
        assert cli("node", "add", "k0", "--mac", "aa:00:00:00:07:02", "--bmc", p1, "--role", "k8s-worker").code == 0
        ctx = make_ctx(roles=roles)
        with db.session_scope(ctx.sessions) as s:
            for name in ("s0", "k0"):
                service.get_node(s, name).state = "ready"
        r = cli("firmware", "update", "s0", "--package", f"{sha}/bmc-2.0.0.bin", "--target", f"{FW}/BMC",
                "--poll", "0.05", "--wait-server", "0", "--json")
        assert r.code == 0, r.err
        assert (marks / "drained-s0").exists() and (marks / "resumed-s0").exists()
        assert peer0.versions["BMC"] == "2.0.0"
        r = cli("firmware", "update", "k0", "--package", f"{sha}/bmc-2.0.0.bin", "--target", f"{FW}/BMC",
                "--poll", "0.05", "--wait-server", "0", "--json")
        assert r.code == 2 and "drain refused" in r.out
        assert peer1.tasks == {} and peer1.versions["BMC"] == "1.0.0"  # never touched
