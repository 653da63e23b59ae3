"""BMC scan benchmark: dgxie's fleet scan of N BMCs (the 66-component DGX H100 capture each)
against bench/bmc/fleet.py on loopback, with and without $expand, concurrent vs sequential, and
the httpx asyncio variant it replaced (bench/bmc/httpx_scan.py) as a reference.

    .venv/bin/python bench/bmc/run.py --bmcs 1000

Starts the fleet servers itself (two processes: with and without $expand) and stops them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from dgxie.bmc.base import BmcError, Endpoint, Options
from dgxie.bmc.scan import scan

HERE = Path(__file__).resolve().parent
# Below the ephemeral range (32768-60999 here), so no client connection holds one of them.
FLEET_PORTS = (24000, 26000)


def start_fleet(bmcs: int, port: int, expand: bool, latency_ms: float = 0) -> subprocess.Popen[bytes]:
    args = [sys.executable, str(HERE / "fleet.py"), "--bmcs", str(bmcs), "--base-port", str(port),
            "--latency-ms", str(latency_ms)]
    p = subprocess.Popen([*args, *([] if expand else ["--no-expand"])], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port + bmcs - 1}/redfish/v1", timeout=1)
            return p
        except httpx.HTTPError:
            time.sleep(0.2)
    p.kill()
    raise RuntimeError("fleet did not start")


def run_dgxie(port: int, n: int, concurrency: int) -> tuple[float, int, int]:
    eps = [Endpoint(f"http://127.0.0.1:{port + i}", "admin", "password") for i in range(n)]
    t = time.perf_counter()
    res = scan(eps, Options(timeout=30, retries=1, per_bmc=4, allow_http=True), concurrency=concurrency)
    dt = time.perf_counter() - t
    bad = [r for r in res if isinstance(r, BmcError)]
    assert not bad, bad[:3]
    assert all(len(r.components) == 66 for r in res if not isinstance(r, BmcError))
    return dt, sum(r.requests for r in res if not isinstance(r, BmcError)), n


def run_httpx(port: int, n: int, concurrency: int) -> tuple[float, int, int]:
    """The httpx asyncio variant dgxie used before this benchmark (bench/bmc/httpx_scan.py)."""
    from httpx_scan import scan as httpx_scan  # bench/bmc/ is on sys.path when run as a script

    eps = [Endpoint(f"http://127.0.0.1:{port + i}", "admin", "password") for i in range(n)]
    t = time.perf_counter()
    opts = Options(timeout=30, retries=1, per_bmc=4, allow_http=True)
    res = httpx_scan(eps, opts, concurrency=concurrency, facts=True)
    dt = time.perf_counter() - t
    assert not [r for r in res if isinstance(r, BmcError)]
    return dt, sum(r.requests for r in res if not isinstance(r, BmcError)), n


def run_redfish_lib(port: int, n: int, threads: int, expand: bool = False) -> tuple[float, int, int]:
    """The same reads with the DMTF library (sync, `requests`), in a thread pool: with $expand
    the 7 GETs dgxie's scanner makes; without it root, UpdateService, the collection, 66 members."""
    import redfish

    count = [0]
    q = {"$expand": ".($levels=1)"}

    def one(i: int) -> int:
        c = redfish.redfish_client(base_url=f"http://127.0.0.1:{port + i}", username="admin", password="password",
                                   timeout=30, max_retry=1)
        root = c.get("/redfish/v1").dict
        upd = c.get(root["UpdateService"]["@odata.id"]).dict
        if expand:
            systems = c.get(root["Systems"]["@odata.id"], args=q).dict["Members"]
            versions = [m.get("Version") for m in c.get(upd["FirmwareInventory"]["@odata.id"], args=q).dict["Members"]]
            c.get(root["Managers"]["@odata.id"], args=q)
            for s in systems:
                c.get(s["Processors"]["@odata.id"], args=q)
            count[0] += 6 + len(systems)  # + the client's own root GET
            return len([v for v in versions if v])
        coll = c.get(upd["FirmwareInventory"]["@odata.id"]).dict
        versions = [c.get(m["@odata.id"]).dict.get("Version") for m in coll["Members"]]
        count[0] += 4 + len(versions)
        return len(versions)

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        got = list(pool.map(one, range(n)))
    assert all(g == 66 for g in got)
    return time.perf_counter() - t, count[0], n


def line(name: str, r: tuple[float, int, int], full: int) -> str:
    dt, reqs, n = r
    per = dt / n
    return (f"| {name} | {n} | {dt:.2f} s | {reqs} | {reqs / dt:,.0f} | {per * 1000:.1f} ms "
            f"| {per * full:.1f} s |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bmcs", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=64, help="BMCs in flight (threads)")
    ap.add_argument("--sequential-sample", type=int, default=100, help="BMCs read one at a time (extrapolated)")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="the fleet waits this long before each answer")
    ap.add_argument("--no-expand-sample", type=int, default=1000, help="BMCs in the concurrent no-$expand run")
    a = ap.parse_args()
    fx = start_fleet(a.bmcs, FLEET_PORTS[0], True, a.latency_ms)
    fn = start_fleet(a.bmcs, FLEET_PORTS[1], False, a.latency_ms)
    seq = a.sequential_sample
    try:
        rows = [
            ("dgxie (redfish lib, threads), $expand, concurrent", run_dgxie(FLEET_PORTS[0], a.bmcs, a.concurrency)),
            ("dgxie, $expand, sequential", run_dgxie(FLEET_PORTS[0], seq, 1)),
            ("httpx asyncio variant, $expand, 200 in flight", run_httpx(FLEET_PORTS[0], a.bmcs, 200)),
            ("dgxie, no $expand (66 GETs), concurrent", run_dgxie(FLEET_PORTS[1], a.no_expand_sample, a.concurrency)),
            ("dgxie, no $expand, sequential", run_dgxie(FLEET_PORTS[1], seq, 1)),
            ("httpx asyncio variant, no $expand, 200 in flight", run_httpx(FLEET_PORTS[1], a.no_expand_sample, 200)),
        ]
    finally:
        fx.terminate()
        fn.terminate()
    print(f"fleet latency {a.latency_ms} ms per answer, concurrency {a.concurrency}")
    print(f"| client | BMCs run | time | requests | req/s | per BMC | est. {a.bmcs} BMCs |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(line(name, r, a.bmcs))
    base = rows[0][1][0] / rows[0][1][2]
    print(f"\ndgxie concurrent $expand vs sequential $expand: {(rows[1][1][0] / rows[1][1][2]) / base:.1f}x; "
          f"vs sequential without $expand: {(rows[4][1][0] / rows[4][1][2]) / base:.1f}x")


if __name__ == "__main__":
    main()
