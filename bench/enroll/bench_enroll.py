"""Enroll N nodes through the API, then list them with filters; requests/s and p99 latency.

Runs `dgxie serve` as a real process (one uvicorn worker) on SQLite and on the PostgreSQL at
127.0.0.1:5432 (a throwaway database), loads it from this process with httpx over loopback.

    .venv/bin/python bench/enroll/bench_enroll.py --nodes 10000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_load(client: httpx.AsyncClient, reqs: list[tuple[str, str, dict | None]], conc: int) -> dict:
    lat: list[float] = []
    errors = 0
    it = iter(reqs)

    async def worker() -> None:
        nonlocal errors
        for method, url, body in it:
            t = time.perf_counter()
            r = await client.request(method, url, json=body)
            lat.append(time.perf_counter() - t)
            if r.status_code >= 400:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    wall = time.perf_counter() - t0
    lat.sort()
    return {"n": len(lat), "rps": len(lat) / wall, "p50_ms": statistics.median(lat) * 1e3,
            "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1e3, "errors": errors, "wall_s": wall}


async def bench(base: str, token: str, n: int, conc: int) -> dict[str, dict]:
    h = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=base, headers=h, timeout=60, limits=limits) as c:
        enroll = [("POST", "/api/v1/nodes", {
            "hostname": f"gpu{i:05d}", "mac": f"02:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01",
            "role": "k8s-worker" if i % 4 else "slurmd", "tags": [f"rack{i // 32}", "h100"]}) for i in range(n)]
        out = {"enroll": await run_load(c, enroll, conc)}
        lists = []
        for i in range(500):
            lists.append(("GET", f"/api/v1/nodes?limit=100&offset={(i * 100) % n}", None))
            lists.append(("GET", "/api/v1/nodes?role=slurmd&limit=100", None))
            lists.append(("GET", f"/api/v1/nodes?tag=rack{i % (n // 32)}&limit=100", None))
            lists.append(("GET", "/api/v1/nodes?state=enrolled&role=k8s-worker&limit=100", None))
        out["list (100/page, filters)"] = await run_load(c, lists, conc)
        gets = [("GET", f"/api/v1/nodes/gpu{(i * 7919) % n:05d}", None) for i in range(4000)]
        out["get one"] = await run_load(c, gets, conc)
    return out


def serve(db_url: str, data: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    cfg = data / "dgxie.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": db_url, "data_dir": str(data / "var"),
                                   "api": {"listen": f"127.0.0.1:{port}"}, "log_level": "warning"}))
    env = os.environ | {"DGXIE_CONFIG": str(cfg)}
    token = subprocess.run([sys.executable, "-m", "dgxie", "token", "create", "--role", "admin", "--name", "bench"],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.Popen([sys.executable, "-m", "dgxie", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(150):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc, token
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("dgxie serve did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        pgname = f"dgxie_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pgname}"')
        try:
            pg_url = args.pg.rsplit("/", 1)[0] + "/" + pgname
            for name, url in (("sqlite", f"sqlite:///{t}/bench.db"), ("postgresql", pg_url)):
                d = t / name
                d.mkdir()
                port = free_port()
                proc, token = serve(url, d, port)
                try:
                    results[name] = asyncio.run(bench(f"http://127.0.0.1:{port}", token, args.nodes, args.concurrency))
                finally:
                    proc.terminate()
                    proc.wait(30)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pgname}" WITH (FORCE)')
    print("| database | workload | requests | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|")
    for db, res in results.items():
        for wl, r in res.items():
            print(f"| {db} | {wl} | {r['n']} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
                  f"| {r['errors']} |")


if __name__ == "__main__":
    main()
