"""BMC scan benchmark: dgxie's fleet scan of N BMCs (the 66-component DGX H100 capture each)
against bench/bmc/fleet.py on loopback, with and without $expand, concurrent vs sequential, and
the DMTF `redfish` library (synchronous, in threads) as the reference client.

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


def start_fleet(bmcs: int, port: int, expand: bool) -> subprocess.Popen[bytes]:
    args = [sys.executable, str(HERE / "fleet.py"), "--bmcs", str(bmcs), "--base-port", str(port)]
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
    res = scan(eps, Options(timeout=30, retries=1, per_bmc=4), concurrency=concurrency, facts=True)
    dt = time.perf_counter() - t
    bad = [r for r in res if isinstance(r, BmcError)]
    assert not bad, bad[:3]
    assert all(len(r.components) == 66 for r in res if not isinstance(r, BmcError))
    return dt, sum(r.requests for r in res if not isinstance(r, BmcError)), n


def run_redfish_lib(port: int, n: int, threads: int) -> tuple[float, int, int]:
    """Same reads (root, UpdateService, FirmwareInventory, 66 members) with the DMTF library."""
    import redfish

    count = [0]

    def one(i: int) -> int:
        c = redfish.redfish_client(base_url=f"http://127.0.0.1:{port + i}", username="admin", password="password",
                                   timeout=30, max_retry=1)
        root = c.get("/redfish/v1").dict
        upd = c.get(root["UpdateService"]["@odata.id"]).dict
        coll = c.get(upd["FirmwareInventory"]["@odata.id"]).dict
        versions = [c.get(m["@odata.id"]).dict.get("Version") for m in coll["Members"]]
        count[0] += 4 + len(versions)  # + the client's own root GET
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
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--sequential-sample", type=int, default=100, help="BMCs read one at a time (extrapolated)")
    a = ap.parse_args()
    fx = start_fleet(a.bmcs, 30000, True)
    fn = start_fleet(a.bmcs, 32000, False)
    try:
        rows = [
            ("dgxie, $expand, concurrent", run_dgxie(30000, a.bmcs, a.concurrency)),
            ("dgxie, no $expand (66 GETs/BMC), concurrent", run_dgxie(32000, a.bmcs, a.concurrency)),
            ("dgxie, $expand, sequential", run_dgxie(30000, a.sequential_sample, 1)),
            ("dgxie, no $expand, sequential", run_dgxie(32000, a.sequential_sample, 1)),
            ("DMTF redfish lib, 64 threads, no $expand", run_redfish_lib(32000, a.sequential_sample * 2, 64)),
            ("DMTF redfish lib, sequential, no $expand", run_redfish_lib(32000, a.sequential_sample // 2, 1)),
        ]
    finally:
        fx.terminate()
        fn.terminate()
    print(f"| client | BMCs run | time | requests | req/s | per BMC | est. {a.bmcs} BMCs |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(line(name, r, a.bmcs))
    base = rows[0][1][0] / rows[0][1][2]
    seq = rows[2][1][0] / rows[2][1][2]
    print(f"\nconcurrent vs sequential ($expand): {seq / base:.1f}x; "
          f"vs sequential without $expand: {(rows[3][1][0] / rows[3][1][2]) / base:.1f}x")


if __name__ == "__main__":
    main()
