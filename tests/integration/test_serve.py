"""`dgxie serve` as a real process: migrates, serves /healthz and the API on its own port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.support.net import free_port


def test_serve_process(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    cfg = tmp_path / "dgxie.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": db_url, "data_dir": str(tmp_path / "data"),
                                   "api": {"listen": f"127.0.0.1:{port}"}}))
    env = os.environ | {"DGXIE_CONFIG": str(cfg)}
    token = subprocess.run([sys.executable, "-m", "dgxie", "token", "create", "--role", "admin", "--name", "a"],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.Popen([sys.executable, "-m", "dgxie", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "dgxie serve did not come up"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        h = {"Authorization": f"Bearer {token}"}
        r = httpx.post(f"http://127.0.0.1:{port}/api/v1/nodes", json={"hostname": "s1", "mac": "02:00:00:00:00:01"},
                       headers=h, timeout=5)
        assert r.status_code == 201
        r = httpx.post(f"http://127.0.0.1:{port}/api/v1/nodes", content=b"\xff\xfe", headers=h | {
            "content-type": "application/json"}, timeout=5)
        assert r.status_code == 422
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert "Traceback" not in out
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o777 == 0o600
