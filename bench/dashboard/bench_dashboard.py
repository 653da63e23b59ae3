"""The dashboard's pages with N nodes enrolled (issue 16: under 1 s with 10,000): server time of
each page (median and p95 of sequential GETs, the whole HTML read), and the browser's load time of
the fleet and node pages (Playwright driving Debian's chromium: navigation start to `load`).

Runs `dgxie serve` as a real process (tests/support/serve.py) on SQLite and on the PostgreSQL at
127.0.0.1:5432 (a throwaway database); nodes enrolled in bulk with a role, two tags and a serial
in their facts (N `node.create` events in the log).

    .venv/bin/python bench/dashboard/bench_dashboard.py --nodes 10000 --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.browser import browser
from tests.support.serve import served

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def seed(url: str, auth: dict[str, str], n: int) -> None:
    for start in range(0, n, 5000):
        nodes = [{"hostname": f"n{i:05d}", "mac": f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                  "ip": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "role": ("slurmd", "login", "k8s")[i % 3],
                  "tags": [f"rack{i // 40}", "gpu"], "facts": {"serial": f"SN-{i:06d}", "model": "DGX H100"}}
                 for i in range(start, min(n, start + 5000))]
        httpx.post(f"{url}/api/v1/nodes/bulk", headers=auth, json={"nodes": nodes}, timeout=300).raise_for_status()


def rollouts(url: str, auth: dict[str, str], config: Path) -> None:
    """A staged package and 5 firmware update jobs: one on every node (tag `gpu`; no node has a BMC,
    so the job ends at once with every node skipped), four on 40 nodes each."""
    image = config.parent / "bmc.bin"
    image.write_text("VERSION=2.0.0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGXIE_")} | {"DGXIE_CONFIG": str(config)}
    out = subprocess.run([sys.executable, "-m", "dgxie", "firmware", "stage", str(image), "--json"], check=True,
                         env=env, capture_output=True, text=True)
    pkg = json.loads(out.stdout)
    package = f"{pkg['sha256']}/{pkg['name']}"
    bodies = [{"tags": ["gpu"], "package": package}] + [{"tags": [f"rack{r}"], "package": package} for r in range(4)]
    for body in bodies:
        httpx.post(f"{url}/api/v1/firmware/updates", headers=auth, json=body, timeout=300).raise_for_status()


def timed(client: httpx.Client, path: str, runs: int) -> tuple[float, float, int]:
    lat = []
    for _ in range(runs):
        t = time.perf_counter()
        r = client.get(path)
        r.raise_for_status()
        lat.append(time.perf_counter() - t)
    lat.sort()
    return statistics.median(lat), lat[max(0, int(len(lat) * 0.95) - 1)], len(r.content)


def bench(db_url: str, label: str, n: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, served(Path(tmp), db_url,
                                                      roles={"slurmd": {"groups": ["slurm-node"]},
                                                             "login": {"groups": ["login"]},
                                                             "k8s": {"groups": ["kube-node"]}}) as srv:
        t = time.perf_counter()
        seed(srv.url, srv.auth, n)
        rollouts(srv.url, srv.auth, Path(tmp) / "dgxie.yaml")
        print(f"\n{label}: {n} nodes enrolled (and 5 firmware rollouts) in {time.perf_counter() - t:.1f} s")
        c = httpx.Client(base_url=srv.url, timeout=60, follow_redirects=True)
        c.post("/ui/login", data={"token": srv.token}, headers={"Origin": srv.url}).raise_for_status()
        mid = f"n{n // 2:05d}"
        pages = ["/ui/", "/ui/?page=100", f"/ui/?q=SN-{n // 2:06d}", "/ui/?q=02:00:00:00:1",
                 "/ui/?role=slurmd&tag=rack7&sort=changed&desc=1", "/ui/?sort=ip&desc=1&page=50",
                 "/ui/?firmware=outdated", f"/ui/nodes/{mid}", "/ui/events", f"/ui/events?node={mid}",
                 "/ui/events?kind=node.*&actor=token:t", "/ui/firmware", "/ui/firmware/updates/1",
                 f"/ui/firmware/updates/1?page={max(1, n // 200)}", "/ui/firmware/updates/1.json", "/ui/mirrors",
                 "/ui/tokens"]
        print("| page | median | p95 | HTML bytes |\n|---|---|---|---|")
        for path in pages:
            med, p95, size = timed(c, path, runs)
            print(f"| `{path}` | {med * 1000:.0f} ms | {p95 * 1000:.0f} ms | {size:,} |")
        with browser() as b:
            ctx = b.new_context()
            ctx.add_cookies([{"name": "dgxie_session", "value": c.cookies["dgxie_session"], "url": srv.url}])
            page = ctx.new_page()
            for path in ("/ui/", f"/ui/nodes/{mid}"):
                loads = []
                for _ in range(5):
                    page.goto(srv.url + path, wait_until="load")
                    loads.append(page.evaluate("() => { const e = performance.getEntriesByType('navigation')[0];"
                                               " return e.loadEventEnd - e.startTime; }"))
                print(f"| browser load `{path}` (median of 5) | {statistics.median(loads):.0f} ms | | |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench(f"sqlite:///{tmp}/dgxie.db", "SQLite", a.nodes, a.runs)
    name = f"dgxie_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        bench(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", "PostgreSQL", a.nodes, a.runs)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
