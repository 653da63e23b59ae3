"""Instance roles (`instance.role`, `dgxie serve --role`): what each role runs.

- `boot`: no job worker, no site-wide periodic work (sweep, mirror scheduler, handoff worker);
- `api`: those, and no DHCP/TFTP server even when the config enables them;
- a bad `--role` is one CLI error line and exit 1;
- two real processes on one PostgreSQL (an `api` "region" and a `boot` "rack"): only the boot one
  binds the DHCP and TFTP ports, only the api one takes the site-wide leases;
- the job worker's executions show on /metrics (`dgxie_job_executions_total{kind}`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from dgxie import db
from dgxie.app import create_app
from dgxie.compose import servers
from dgxie.context import Context
from dgxie.errors import ConfigError
from dgxie.jobs import queue
from dgxie.models import Instance, Job, Lease
from tests.support.net import free_port

SITE_WORK = {"job-worker", "install-timeout-sweep", "mirror-scheduler", "handoff-worker"}
HANDOFF = {"enabled": True}
BOGUS_DHCP = {"enabled": True, "interfaces": ["ddnope0"], "subnets": [{"cidr": "127.0.0.0/8"}]}


@pytest.mark.parametrize(("role", "runs"), [("all", SITE_WORK), ("api", SITE_WORK), ("boot", set())])
def test_role_decides_the_job_services(make_ctx: Callable[..., Context], role: str, runs: set[str]) -> None:
    ctx = make_ctx(instance={"id": "x", "role": role}, handoff=HANDOFF)
    names = {s.name for s in ctx.services}
    assert names & SITE_WORK == runs
    assert {"db-probe", "instance-heartbeat"} <= names


def test_api_role_binds_no_boot_servers(make_ctx: Callable[..., Context]) -> None:
    tftp = {"enabled": True, "listen": f"127.0.0.1:{free_port()}"}
    ctx = make_ctx(instance={"role": "api"}, dhcp=BOGUS_DHCP, tftp=tftp)
    servers.add_boot_servers(ctx)  # the bogus interface would be an error if it were used
    assert ctx.service("dhcp") is None and ctx.service("tftp") is None
    ctx = make_ctx(instance={"role": "boot"}, dhcp=BOGUS_DHCP, tftp=tftp)
    with pytest.raises(ConfigError, match="ddnope0"):
        servers.add_boot_servers(ctx)


def test_bad_role_is_one_error_line(cli: Callable[..., object]) -> None:
    r = cli("serve", "--role", "region")
    assert r.code == 1  # type: ignore[attr-defined]
    assert r.err.splitlines() == ["dgxie: error: --role 'region': expected one of all, api, boot"]  # type: ignore[attr-defined]


def test_bad_config_role_is_one_error_line(cli: Callable[..., object], config_file: Callable[..., Path]) -> None:
    config_file(instance={"role": "rack"})
    r = cli("serve")
    assert r.code == 1  # type: ignore[attr-defined]
    assert r.err.startswith("dgxie: error: instance.role") and "all" in r.err  # type: ignore[attr-defined]


def test_executions_on_metrics(make_ctx: Callable[..., Context]) -> None:
    ctx = make_ctx(instance={"id": "m", "heartbeat_seconds": 0.2, "expire_seconds": 1})
    ctx.job_kinds.register("t.metric", lambda job: None)
    with db.session_scope(ctx.sessions) as s:
        queue.enqueue(s, "t.metric", actor="test")
    with TestClient(create_app(ctx)) as c:
        deadline = time.monotonic() + 20
        while True:
            with ctx.sessions() as s:
                if s.scalars(select(Job.status)).one() == "done":
                    break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert 'dgxie_job_executions_total{kind="t.metric"} 1.0' in c.get("/metrics").text


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _serve(tmp_path: Path, db_url: str, name: str, role: str, **extra: object) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cfg = {"database_url": db_url, "data_dir": str(tmp_path / name), "api": {"listen": f"127.0.0.1:{port}"},
           "instance": {"id": name, "heartbeat_seconds": 0.5, "expire_seconds": 2}} | extra
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGXIE_")}
    with (tmp_path / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "dgxie", "serve", "--config", str(path), "--role", role],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return proc, port


def test_region_and_rack_processes(tmp_path: Path, pg_database: str) -> None:
    from tests.conftest import _truncate

    _truncate(pg_database)
    dhcp_port, tftp_port = free_port(), free_port()
    boot_cfg = {"dhcp": {"enabled": True, "interfaces": ["lo"], "listen_port": dhcp_port,
                         "subnets": [{"cidr": "127.0.0.0/8", "pool": "127.0.1.1-127.0.1.50"}]},
                "tftp": {"enabled": True, "listen": f"127.0.0.1:{tftp_port}"}}
    procs = [_serve(tmp_path, pg_database, "region", "api", **boot_cfg),  # same config: the role decides
             _serve(tmp_path, pg_database, "rack", "boot", **boot_cfg)]
    engine = db.make_engine(pg_database)
    try:
        for (proc, port), name in zip(procs, ("region", "rack"), strict=True):
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / f"{name}.log").read_text()
                time.sleep(0.2)
        assert not _udp_free(dhcp_port) and not _udp_free(tftp_port)  # bound by the rack (only it may)
        sessions = db.session_factory(engine)
        deadline = time.monotonic() + 20
        while True:
            with sessions() as s:
                roles = {i.id: i.role for i in s.scalars(select(Instance))}
                holders = {x.name: x.holder for x in s.scalars(select(Lease))}
            if roles == {"region": "api", "rack": "boot"} and {"install-timeout-sweep", "mirror-scheduler"} <= set(holders):
                break
            assert time.monotonic() < deadline, (roles, holders)
            time.sleep(0.2)
        assert set(holders.values()) == {"region"}
        procs[1][0].terminate()  # the rack goes: the ports are free again (the region never had them)
        procs[1][0].wait(15)
        assert _udp_free(dhcp_port) and _udp_free(tftp_port)
        assert "role boot" in (tmp_path / "rack.log").read_text()
    finally:
        engine.dispose()
        for proc, _ in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def test_boot_role_serves_nodes_not_operators(make_ctx: Callable[..., Context]) -> None:
    with TestClient(create_app(make_ctx(instance={"role": "boot"}))) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/metrics").status_code == 200
        assert c.get("/boot/ipxe?mac=02:00:00:00:00:09").status_code == 200  # an unknown node's script
        r = c.get("/api/v1/nodes")
        assert r.status_code == 404 and "detail" in r.json()
        assert c.get("/ui/", follow_redirects=False).status_code == 404
    with TestClient(create_app(make_ctx(instance={"role": "api"}))) as c:
        assert c.get("/api/v1/nodes").status_code == 401  # there, behind its tokens
