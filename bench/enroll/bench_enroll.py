"""Enroll N nodes through the API (one POST each, then in bulk), list them with filters, get one;
requests/s and p99 latency, each as a ratio to the same server's `/healthz` (the boot fast path)
and to its trivial API route (`GET /api/v1/tokens/self`: admission, token, FastAPI, JSON, no
database), measured in the same run with the same clients, right before and right after each
workload (the column "trivial around" gives their mean; issue 14); then `dgxie node import` of an N-row CSV, nodes/s.

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
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api-load"))
from rawhttp import Conn

# the trivial route through the API's whole stack (admission, bearer token, FastAPI, JSON): `/healthz`
# is answered before that stack, by the boot fast path, so it is no longer what a route could cost
TRIVIAL = "GET /api/v1/tokens/self (trivial API route)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client:
    """`conc` keep-alive connections (bench/api-load/rawhttp.py: httpx costs more CPU than the
    server's trivial route, which would make every ratio to /healthz look better than it is)."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token

    def conns(self, n: int) -> list[Conn]:
        return [Conn("127.0.0.1", self.port, {"Authorization": f"Bearer {self.token}"}) for _ in range(n)]


async def run_load(client: Client, reqs: list[tuple[str, str, dict | None]], conc: int) -> dict:
    lat: list[float] = []
    errors: Counter[int] = Counter()
    it = iter(reqs)

    async def worker(conn: Conn) -> None:
        for method, url, body in it:
            t = time.perf_counter()
            r = await conn.request(method, url, body)
            lat.append(time.perf_counter() - t)
            if r.status >= 400:
                errors[r.status] += 1
        conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in client.conns(conc)))
    wall = time.perf_counter() - t0
    lat.sort()
    return {"n": len(lat), "rps": len(lat) / wall, "p50_ms": statistics.median(lat) * 1e3,
            "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1e3, "wall_s": wall,
            "errors": ", ".join(f"{n}x{status}" for status, n in sorted(errors.items())) or "0"}


def node(i: int) -> dict:
    return {"hostname": f"gpu{i:05d}", "mac": f"02:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01",
            "role": "k8s-worker" if i % 4 else "slurmd", "tags": [f"rack{i // 32}", "h100"]}


async def bench(port: int, token: str, n: int, conc: int, batch: int) -> dict[str, dict]:
    """Each workload's result carries `trivial`: the trivial route's rate measured right before
    and right after it, averaged (one measurement at the start varied by a third between runs on
    a noisy machine, and drift over the run then moved every ratio)."""
    c = Client(port, token)
    trivial = [("GET", "/api/v1/tokens/self", None)] * 4000
    out = {"/healthz (the baseline)": await run_load(c, [("GET", "/healthz", None)] * 4000, conc),
           TRIVIAL: await run_load(c, trivial, conc)}
    before = out[TRIVIAL]["rps"]

    async def beside(name: str, reqs: list[tuple[str, str, dict | None]], clients: int) -> dict:
        nonlocal before
        r = await run_load(c, reqs, clients)
        after = (await run_load(c, trivial, conc))["rps"]
        r["trivial"], before = (before + after) / 2, after
        out[name] = r
        return r

    single = n // 5
    await beside("enroll, one POST each", [("POST", "/api/v1/nodes", node(i)) for i in range(single)], conc)
    bulk = [("POST", "/api/v1/nodes/bulk", {"nodes": [node(i) for i in range(j, min(j + batch, n))]})
            for j in range(single, n, batch)]
    r = await beside(f"enroll, bulk of {batch} (2 clients)", bulk, 2)
    r["nodes_s"] = (n - single) / r["wall_s"]
    lists = []
    for i in range(500):
        lists.append(("GET", f"/api/v1/nodes?limit=100&offset={(i * 100) % n}", None))
        lists.append(("GET", "/api/v1/nodes?role=slurmd&limit=100", None))
        lists.append(("GET", f"/api/v1/nodes?tag=rack{i % (n // 32)}&limit=100", None))
        lists.append(("GET", "/api/v1/nodes?state=enrolled&role=k8s-worker&limit=100", None))
    await beside("list (100/page, filters)", lists, conc)
    gets = [("GET", f"/api/v1/nodes/gpu{(i * 7919) % n:05d}", None) for i in range(4000)]
    await beside("get one", gets, conc)
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
    ap.add_argument("--batch", type=int, default=1000, help="nodes per bulk request")
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
                    results[name] = asyncio.run(bench(port, token, args.nodes, args.concurrency,
                                                      args.batch))
                finally:
                    proc.terminate()
                    proc.wait(30)
                results[name]["node import (CLI, CSV)"] = import_csv(url.replace("bench.db", "import.db")
                                                                     if name == "sqlite" else url, d, args.nodes)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pgname}" WITH (FORCE)')
    print(f"load average before: {os.getloadavg()}")
    print("| database | workload | requests | req/s | x /healthz | x trivial API route | trivial around | nodes/s "
          "| p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for db, res in results.items():
        base, trivial = res["/healthz (the baseline)"]["rps"], res[TRIVIAL]["rps"]
        for wl, r in res.items():
            nodes = f"{r['nodes_s']:.0f}" if "nodes_s" in r else "-"
            if "rps" not in r:
                print(f"| {db} | {wl} | {r['n']} | - | - | - | - | {nodes} | - | - | {r['errors']} |")
                continue
            beside = r.get("trivial", trivial)  # the trivial route's rate around this workload
            print(f"| {db} | {wl} | {r['n']} | {r['rps']:.0f} | {r['rps'] / base:.3f} | {r['rps'] / beside:.2f} "
                  f"| {beside:.0f} | {nodes} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |")


def import_csv(db_url: str, d: Path, n: int) -> dict:
    """`dgxie node import` of N new nodes from one CSV (a fresh database for SQLite; on PostgreSQL
    the same database, with hostnames and MACs the API run did not use)."""
    csv = d / "nodes.csv"
    rows = ["hostname,mac,role,tags"] + [
        f"imp{i:05d},02:01:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01,k8s-worker,rack{i // 32}"
        for i in range(n)]
    csv.write_text("\n".join(rows) + "\n")
    cfg = d / "import.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": db_url, "data_dir": str(d / "var"), "log_level": "warning"}))
    env = os.environ | {"DGXIE_CONFIG": str(cfg)}
    subprocess.run([sys.executable, "-m", "dgxie", "node", "list", "--limit", "1"], env=env, check=True,
                   capture_output=True)  # the schema, outside the timing
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "dgxie", "node", "import", str(csv)], env=env, capture_output=True,
                       text=True)
    wall = time.perf_counter() - t
    return {"n": n, "nodes_s": n / wall, "wall_s": wall, "errors": "0" if r.returncode == 0 else r.stderr[:200]}


if __name__ == "__main__":
    main()
