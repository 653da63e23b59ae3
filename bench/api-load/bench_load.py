"""The admin API under 1,000 concurrent clients: answered %, statuses, latency, /healthz, RSS.

Starts a real `dgxie serve` on loopback (SQLite, or a throwaway database on the PostgreSQL at
127.0.0.1:5432), enrolls --nodes nodes, then runs --clients concurrent clients for --duration
seconds, each on its own keep-alive connection, looping over a mix of reads and writes:
get (one node by name), list (a 50-node page), patch (a node's vars), create (a new node).
A client that gets 503 waits its `Retry-After` (with +-50% jitter) as a well-behaved client
does; --think adds a pause between requests (0: a closed loop, the hardest case). A prober opens a
fresh connection for `GET /healthz` every 0.25 s during the load and for 10 s after it.

    .venv/bin/python bench/api-load/bench_load.py --db sqlite --clients 1000 --duration 60
    .venv/bin/python bench/api-load/bench_load.py --db postgresql --wrk 20   # then wrk, 1000 conns

With --restart-pg AT, dgxie runs on a private PostgreSQL (tests/support/pg_private.py) that is
stopped AT seconds into the load and started again --pg-down seconds later.

Prints a summary (markdown) and, with --json FILE, writes every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[2]))  # tests.support.pg_private (--restart-pg)
from rawhttp import Conn

from tests.support.pg_private import PrivatePostgres, private_postgres

KINDS = ("get", "list", "patch", "create")
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1e3


class Stats:
    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = {k: [] for k in KINDS}
        self.status: Counter[str] = Counter()
        self.by_kind: Counter[tuple[str, int]] = Counter()
        self.failed: Counter[str] = Counter()


def request_for(kind: str, rng: random.Random, nodes: int, me: int, seq: int) -> tuple[str, str, Any]:
    if kind == "get":
        return "GET", f"/api/v1/nodes/n{rng.randrange(nodes):05d}", None
    if kind == "list":
        return "GET", f"/api/v1/nodes?limit=50&offset={rng.randrange(max(nodes - 50, 1))}", None
    if kind == "patch":
        return "PATCH", f"/api/v1/nodes/n{rng.randrange(nodes):05d}", {"vars": {"bench": seq, "by": me}}
    mac = f"06:{me >> 8 & 255:02x}:{me & 255:02x}:{seq >> 16 & 255:02x}:{seq >> 8 & 255:02x}:{seq & 255:02x}"
    return "POST", "/api/v1/nodes", {"hostname": f"c{me:04d}-{seq:05d}", "mac": mac}


async def client(me: int, port: int, hdr: dict[str, str], a: argparse.Namespace, weights: list[float],
                 stop_at: float, st: Stats) -> None:
    conn, rng, seq = Conn(HOST, port, hdr), random.Random(me), 0
    while time.monotonic() < stop_at:
        kind = rng.choices(KINDS, weights)[0]
        seq += 1
        method, path, body = request_for(kind, rng, a.nodes, me, seq)
        t = time.perf_counter()
        try:
            r = await asyncio.wait_for(conn.request(method, path, body), a.timeout)
        except TimeoutError:
            st.failed["timeout"] += 1
            conn.close()
            continue
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            st.failed[type(exc).__name__] += 1
            conn.close()
            await asyncio.sleep(0.1)
            continue
        dt = time.perf_counter() - t
        st.status[str(r.status) if r.status != 503 else f"503 {r.json()['detail']}"] += 1
        st.by_kind[(kind, r.status)] += 1
        if r.status == 503:
            wait = float(r.headers.get("retry-after", "1")) * rng.uniform(0.5, 1.5)
            await asyncio.sleep(min(wait, max(stop_at - time.monotonic(), 0)))
            continue
        st.lat[kind].append(dt)
        if a.think:
            await asyncio.sleep(rng.uniform(0, 2 * a.think))
    conn.close()


async def probe(port: int) -> tuple[float, int]:
    """Seconds and status of one `GET /healthz` on a fresh connection ((10.0, 0): no answer in 10 s)."""
    t = time.perf_counter()
    c = Conn(HOST, port)
    try:
        r = await asyncio.wait_for(c.request("GET", "/healthz"), 10)
    except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError):
        return 10.0, 0
    finally:
        c.close()
    return time.perf_counter() - t, r.status


async def prober(port: int, done: asyncio.Event, out: dict[str, list[float]], codes: Counter[str],
                 after_s: float) -> None:
    end = float("inf")
    while time.monotonic() < end:
        phase = "after" if done.is_set() else "during"
        if phase == "after" and end == float("inf"):
            end = time.monotonic() + after_s
        took, status = await probe(port)
        out[phase].append(took)
        codes[f"{phase} {status}"] += 1
        await asyncio.sleep(0.25)


async def seed(port: int, hdr: dict[str, str], n: int) -> None:
    it = iter(range(n))

    async def worker() -> None:
        c = Conn(HOST, port, hdr)
        for i in it:
            mac = f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"
            while (r := await c.request("POST", "/api/v1/nodes", {"hostname": f"n{i:05d}", "mac": mac})).status == 503:
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))
            assert r.status == 201, (r.status, r.body)
        c.close()

    await asyncio.gather(*(worker() for _ in range(8)))


async def restart_later(pg: PrivatePostgres, at: float, down: float) -> None:
    """Stop the private PostgreSQL `at` s into the load and start it again `down` s later."""
    await asyncio.sleep(at)
    await asyncio.to_thread(pg.stop)
    await asyncio.sleep(down)
    await asyncio.to_thread(pg.start)


async def load(port: int, token: str, a: argparse.Namespace, pid: int,
               pg: PrivatePostgres | None = None) -> dict[str, Any]:
    hdr = {"Authorization": f"Bearer {token}"}
    await seed(port, hdr, a.nodes)
    weights = [float(w) for w in a.mix.split(",")]
    rss0, st = rss_mib(pid), Stats()
    health: dict[str, list[float]] = {"during": [], "after": []}
    done = asyncio.Event()
    codes: Counter[str] = Counter()
    probe_task = asyncio.create_task(prober(port, done, health, codes, a.after))
    t0 = time.monotonic()
    restart = asyncio.create_task(restart_later(pg, a.restart_pg, a.pg_down)) if pg else None
    await asyncio.gather(*(client(i, port, hdr, a, weights, t0 + a.duration, st) for i in range(a.clients)))
    if restart:
        await restart
    wall = time.monotonic() - t0
    done.set()
    first = Conn(HOST, port, hdr)
    t = time.perf_counter()
    r = await first.request("GET", "/api/v1/nodes/n00000")
    first_after = (time.perf_counter() - t, r.status)
    first.close()
    await probe_task
    answered, failed = sum(st.status.values()), sum(st.failed.values())
    return {
        "wall_s": wall, "requests": answered + failed, "answered": answered, "unanswered": dict(st.failed),
        "answered_pct": 100 * answered / max(answered + failed, 1),
        "served_pct": 100 * sum(v for k, v in st.status.items() if k[:3] != "503") / max(answered + failed, 1),
        "status": dict(sorted(st.status.items())), "rps": answered / wall,
        "by_kind": {f"{k} {s}": v for (k, s), v in sorted(st.by_kind.items())},
        "latency_ms": {k: {"n": len(v), "p50": pct(v, 0.5), "p99": pct(v, 0.99)} for k, v in st.lat.items()},
        "healthz_max_ms": {k: max(v, default=float("nan")) * 1e3 for k, v in health.items()},
        "healthz_probes": dict(sorted(codes.items())),
        "healthz_ms": {k: [round(x * 1e3) for x in v] for k, v in health.items()},
        "first_get_after": {"ms": first_after[0] * 1e3, "status": first_after[1]},
        "rss_mib": {"before": rss0, "after": rss_mib(pid)},
    }


def start(a: argparse.Namespace, work: Path, url: str) -> tuple[subprocess.Popen[bytes], int, str, Path]:
    port = free_port()
    api: dict[str, Any] = {"listen": f"{HOST}:{port}"}
    for kv in a.api:
        k, _, v = kv.partition("=")
        api[k] = yaml.safe_load(v)
    cfg = work / "dgxie.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": url, "data_dir": str(work / "data"), "log_level": "warning",
                                   "api": api}))
    env = os.environ | {"DGXIE_CONFIG": str(cfg)}
    subprocess.run([sys.executable, "-m", "dgxie", "db", "upgrade"], env=env, check=True, capture_output=True)
    token = subprocess.run([sys.executable, "-m", "dgxie", "token", "create", "--role", "admin", "--name", "bench"],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    log = work / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "dgxie", "serve"], env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while asyncio.run(probe(port))[1] != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"dgxie serve did not come up:\n{log.read_text()}")
        time.sleep(0.3)
    return proc, port, token, log


def wrk(port: int, token: str, seconds: int, conns: int) -> str:
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {token}",
           f"http://{HOST}:{port}/api/v1/nodes/n00001"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout


def report(res: dict[str, Any]) -> str:
    lines = [f"answered {res['answered_pct']:.2f}% ({res['answered']} of {res['requests']}; unanswered "
             f"{res['unanswered'] or 0}), served (not 503) {res['served_pct']:.2f}%, {res['rps']:.0f} answers/s",
             f"status: {res['status']}", f"by kind: {res['by_kind']}",
             "| kind | answers (not 503) | p50 ms | p99 ms |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['n']} | {v['p50']:.1f} | {v['p99']:.1f} |" for k, v in res["latency_ms"].items()]
    h, rss = res["healthz_max_ms"], res["rss_mib"]
    lines += [f"/healthz max: during {h['during']:.0f} ms, after {h['after']:.0f} ms (probes by status: "
              f"{res['healthz_probes']}); first GET after the load: {res['first_get_after']['ms']:.0f} ms "
              f"({res['first_get_after']['status']})",
              f"RSS: {rss['before']:.1f} MiB before, {rss['after']:.1f} MiB after "
              f"(+{rss['after'] - rss['before']:.1f} MiB)", f"server log: {res['log']}"]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--think", type=float, default=0.0, help="mean pause between a client's requests (s)")
    p.add_argument("--mix", default="70,10,15,5", help="weights of get,list,patch,create")
    p.add_argument("--timeout", type=float, default=30, help="a request unanswered this long counts as lost")
    p.add_argument("--after", type=float, default=10, help="seconds of /healthz probes after the load")
    p.add_argument("--api", action="append", default=[], metavar="KEY=VALUE", help="an api.* setting")
    p.add_argument("--wrk", type=int, default=0, metavar="SECONDS", help="then run wrk for SECONDS")
    p.add_argument("--restart-pg", type=float, metavar="AT", help="on a private PostgreSQL (initdb + pg_ctl), "
                   "stopped AT s into the load and started --pg-down s later")
    p.add_argument("--pg-down", type=float, default=5.0)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dgxie-api-load-"))
    url, dbname = f"sqlite:///{work}/dgxie.db", ""
    if a.restart_pg is not None:
        with private_postgres() as pg:
            run(a, work, pg.url, "", pg)
        return
    if a.db == "postgresql":
        dbname = f"dgxie_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(a.pg_admin, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{dbname}"')
        url = a.pg_admin.rsplit("/", 1)[0] + f"/{dbname}"
    run(a, work, url, dbname, None)


def run(a: argparse.Namespace, work: Path, url: str, dbname: str, pg: PrivatePostgres | None) -> None:
    proc, port, token, log = start(a, work, url)
    try:
        res = asyncio.run(load(port, token, a, proc.pid, pg))
        if a.wrk:
            res["wrk"] = wrk(port, token, a.wrk, a.clients)
    finally:
        proc.terminate()
        proc.wait(30)
        if dbname:
            with psycopg.connect(a.pg_admin, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    text = log.read_text(errors="replace")
    log_counts = {"lines": text.count("\n"), "tracebacks": text.count("Traceback"), "errors": text.count(" ERROR "),
                  "warnings": text.count(" WARNING ")}
    res |= {"db": "private postgresql, restarted" if pg else a.db, "clients": a.clients, "duration": a.duration,
            "think": a.think, "mix": a.mix, "api": a.api, "loadavg": os.getloadavg(), "log": log_counts}
    print(f"## {res['db']}: {a.clients} clients, {a.duration:.0f} s, think {a.think} s, mix {a.mix}, api {a.api}")
    print(report(res))
    if "wrk" in res:
        print("wrk:\n" + res["wrk"])
    print(f"load average after: {res['loadavg']}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
