"""The ansible bootstrap worker with real `ansible-playbook` (local connection) on SQLite.

The worker runs inside the app lifespan (as `dgxie serve` runs it), finds installed nodes whose role
bootstraps with ansible, and runs `ansible-playbook -i <dgxie inventory script> --limit NODE`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from dgxie import db
from dgxie.app import create_app
from dgxie.boot.state import State
from dgxie.compose import build_context
from dgxie.config import Settings
from dgxie.context import Context
from dgxie.handoff.runner import BootstrapWorker, run_command
from dgxie.models import Event
from dgxie.models.types import utcnow
from tests.support.handoff import add_node, node_state

PLAY = """- hosts: all
  gather_facts: false
  tasks:
{tasks}
"""
OK = """    - name: mark this host
      ansible.builtin.copy:
        dest: "{{ marker_dir }}/{{ inventory_hostname }}"
        content: "{{ dgxie_role }} gpus={{ dgxie_gpu_count }}\\n"
"""
FAIL = """    - ansible.builtin.fail:
        msg: boom from the playbook
"""
HANG = """    - ansible.builtin.shell: "sleep 600; echo {{ marker_dir }}"
"""


@pytest.fixture
def hctx(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Context:
    pb = tmp_path / "playbooks"
    pb.mkdir()
    (pb / "ok.yml").write_text(PLAY.format(tasks=OK))
    (pb / "fail.yml").write_text(PLAY.format(tasks=FAIL))
    (pb / "hang.yml").write_text(PLAY.format(tasks=HANG))
    roles = {n: {"groups": ["kube_node"], "bootstrap": "ansible", "playbook": f"{n}.yml"} for n in ("ok", "fail", "hang")}
    roles["plain"] = {"groups": ["kube_control_plane"]}
    data = {"database_url": sqlite_url, "data_dir": str(tmp_path / "data"), "roles": roles,
            "handoff": {"poll_seconds": 0.5, "concurrency": 4, "timeout_seconds": 25, "playbook_dir": str(pb),
                        "ansible_playbook": str(Path(sys.executable).parent / "ansible-playbook")}}
    cfg = tmp_path / "dgxie.yaml"
    cfg.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("DGXIE_CONFIG", str(cfg))  # what the inventory script run by ansible reads
    ctx = build_context(Settings(**data))
    yield ctx
    ctx.engine.dispose()


def local(tmp_path: Path) -> dict[str, str]:
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "marker_dir": str(tmp_path)}


def leftovers(marker: str) -> list[str]:
    """Processes whose command line mentions `marker` (this test's tmp dir)."""
    out = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and marker in cmd:
            out.append(f"{entry.name}: {cmd}")
    return out


def wait_for(ctx: Context, want: dict[str, str], timeout: float = 150) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        got = {h: node_state(ctx, h) for h in want}
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def last_event(ctx: Context, hostname: str) -> Event:
    with db.session_scope(ctx.sessions) as s:
        ev = s.scalars(select(Event).where(Event.hostname == hostname).order_by(Event.id.desc())).first()
        assert ev is not None
        return ev


def test_worker_runs_playbooks_ok_failing_hanging_and_resumes(hctx: Context, tmp_path: Path) -> None:
    v = local(tmp_path)
    add_node(hctx, "gpu01", 1, role="ok", vars=v, facts={"gpus": 8})
    add_node(hctx, "gpu02", 2, role="ok", vars=v, state=State.READY)  # in kube_node too: --limit keeps it out
    add_node(hctx, "gpu03", 3, role="fail", vars=v)
    add_node(hctx, "gpu04", 4, role="hang", vars=v)
    add_node(hctx, "gpu05", 5, role="ok", vars=v, state=State.BOOTSTRAPPING)  # left by a previous process
    add_node(hctx, "mgmt01", 6, role="plain")  # bootstrap none: straight to ready
    add_node(hctx, "gpu06", 7, role="ok", vars=v, state=State.ENROLLED)  # not installed: untouched
    with TestClient(create_app(hctx)):
        got = wait_for(hctx, {"gpu01": "ready", "gpu03": "failed", "gpu04": "failed", "gpu05": "ready",
                              "mgmt01": "ready"})
    assert got == {"gpu01": "ready", "gpu03": "failed", "gpu04": "failed", "gpu05": "ready", "mgmt01": "ready"}, [
        last_event(hctx, h).data for h in got]
    assert (tmp_path / "gpu01").read_text() == "ok gpus=8\n"
    assert (tmp_path / "gpu05").exists() and not (tmp_path / "gpu02").exists()
    assert node_state(hctx, "gpu06") == "enrolled" and node_state(hctx, "gpu02") == "ready"
    ok = last_event(hctx, "gpu01")
    assert ok.kind == "bootstrap.done" and ok.data["rc"] == 0 and "gpu01" in ok.data["output_tail"]
    assert "--limit" not in ok.data["output_tail"] and "PLAY RECAP" in ok.data["output_tail"]
    bad = last_event(hctx, "gpu03")
    assert bad.to_state == "failed" and bad.data["rc"] == 2 and "boom from the playbook" in bad.data["output_tail"]
    assert bad.reason.startswith("ansible bootstrap failed: fatal: [gpu03]: FAILED!")
    hung = last_event(hctx, "gpu04")
    assert hung.data["timed_out"] is True and "timed out after 25s" in hung.data["output_tail"]
    deadline = time.monotonic() + 15  # the whole tree is gone, setsid()'d Ansible workers and `sleep` included
    while leftovers(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert leftovers(str(tmp_path)) == []
    with db.session_scope(hctx.sessions) as s:
        kinds = [e.kind for e in s.scalars(select(Event).where(Event.hostname == "gpu05"))]
    assert "bootstrap.resume" in kinds


def test_claim_respects_the_concurrency_limit(make_ctx: Callable[..., Context]) -> None:
    """On both databases (PostgreSQL claims with FOR UPDATE SKIP LOCKED)."""
    ctx = make_ctx(roles={"ok": {"groups": ["kube_node"], "bootstrap": "ansible", "playbook": "ok.yml"},
                          "plain": {"groups": ["etcd"]},
                          "script": {"groups": ["slurm-node"], "bootstrap": "cloud-init",
                                     "script": "bootstrap/slurmd.sh.j2"}}, handoff={"enabled": False})
    for i in range(3):
        add_node(ctx, f"gpu0{i}", 10 + i, role="ok")
    add_node(ctx, "mgmt01", 20, role="plain")
    worker = BootstrapWorker(ctx.sessions, ctx.site)
    jobs = worker.claim(2)
    assert len(jobs) == 2 and {j.playbook for j in jobs} == {"ok.yml"}
    assert [node_state(ctx, f"gpu0{i}") for i in range(3)].count("bootstrapping") == 2
    assert node_state(ctx, "mgmt01") == "ready"  # bootstrap none
    assert worker.claim(0) == []
    # a cloud-init node that fetched its script long ago and never reported: failed by the timeout
    add_node(ctx, "gpu09", 30, role="script", state=State.BOOTSTRAPPING)
    add_node(ctx, "gpu08", 31, role="script", state=State.BOOTSTRAPPING)
    with db.session_scope(ctx.sessions) as s:
        from dgxie.nodes.service import get_node

        get_node(s, "gpu09").state_changed_at = utcnow() - timedelta(seconds=7200)
    worker.claim(0)
    assert node_state(ctx, "gpu09") == "failed" and node_state(ctx, "gpu08") == "bootstrapping"
    assert "no report within 3600s" in last_event(ctx, "gpu09").reason
    assert [j.hostname for j in worker.claim(5, resume=True)] == sorted(j.hostname for j in jobs)


def test_run_command_keeps_a_bounded_tail_and_kills_the_group() -> None:
    r = asyncio.run(run_command(["sh", "-c", "seq 1 100000; exit 4"], timeout=60, tail_bytes=300))
    assert r.rc == 4 and not r.ok and len(r.output) <= 300 and r.output.endswith("100000\n")
    t0 = time.monotonic()
    r = asyncio.run(run_command(["sh", "-c", "sleep 300 & sleep 300; echo never"], timeout=1, tail_bytes=300))
    assert r.timed_out and time.monotonic() - t0 < 30 and "timed out after 1s" in r.output
    r = asyncio.run(run_command(["/nonexistent/ansible-playbook"], timeout=5, tail_bytes=300))
    assert r.rc is None and not r.ok and "No such file" in r.output
