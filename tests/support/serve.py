"""A real `dgxie serve` process on loopback for a test, and a way to stall its database on demand.

`served(tmp_path, db_url, api={...})` migrates, creates an admin token, starts `python -m dgxie
serve` with its output in a file, waits for `/healthz` and yields a `Served`. `hold_node_writes`
holds a lock from another connection so that any request enrolling a node blocks until it is
released (reads go on): SQLite `BEGIN IMMEDIATE`, PostgreSQL `LOCK TABLE nodes IN SHARE MODE`.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

from tests.support.net import free_port


@dataclass
class Served:
    url: str
    port: int
    token: str
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def metric(self, name: str) -> float:
        """The value of one sample of /metrics, e.g. `dgxie_http_shed_total{reason="wait"}` (0 if absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def wait_metric(self, name: str, value: float, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.metric(name) != value:
            assert time.monotonic() < deadline, f"{name} never became {value} (is {self.metric(name)})"
            time.sleep(0.05)


def spawn(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """`dgxie serve --config CONFIG` in its own session (killpg stops it and its children), output
    in LOG, with no DGXIE_* variable of this process leaking into its settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGXIE_")}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "dgxie", "serve", "--config", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Until `URL/healthz` answers 200; fails with the log if the server exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


@contextmanager
def served(tmp_path: Path, db_url: str, **config: Any) -> Iterator[Served]:
    port = free_port()
    cfg = {"database_url": db_url, "data_dir": str(tmp_path / "data")} | config
    cfg["api"] = {"listen": f"127.0.0.1:{port}"} | config.get("api", {})
    path = tmp_path / "dgxie.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = os.environ | {"DGXIE_CONFIG": str(path)}
    subprocess.run([sys.executable, "-m", "dgxie", "db", "upgrade"], env=env, check=True, capture_output=True)
    token = subprocess.run([sys.executable, "-m", "dgxie", "token", "create", "--role", "admin", "--name", "t"],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "dgxie", "serve"], env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, f"dgxie serve exited:\n{log.read_text()}"
                assert time.monotonic() < deadline, "dgxie serve did not come up"
                time.sleep(0.2)
        yield Served(url, port, token, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def hold_node_writes(db_url: str) -> Iterator[None]:
    """While inside, a request that enrolls a node waits (for the lock) in the server."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as pg:
        pg.execute("LOCK TABLE nodes IN SHARE MODE")  # blocks writes to nodes, not reads
        try:
            yield
        finally:
            pg.rollback()
