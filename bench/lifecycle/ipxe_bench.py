"""Uncached iPXE scripts: `GET /boot/ipxe?mac=` with the script cache off, next to the same
server's `/healthz`, in one run.

Starts its own `dgxie serve` (SQLite in a temp dir, `boot.script_cache_seconds: 0`, so every
request renders from the database: the miss path of `dgxie.ipxe.cache`), enrolls --nodes nodes,
then for --seconds each drives C keep-alive connections (bench/api-load/rawhttp.py) at
(1) /boot/ipxe with a different MAC per request, round robin, and (2) /healthz. Prints req/s,
p50/p99 latency and the ratio. Usage:

    .venv/bin/python bench/lifecycle/ipxe_bench.py [--nodes 1000] [-c 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "api-load"), str(ROOT / "bench" / "lifecycle")]

from rawhttp import Conn  # noqa: E402
from seed_bench import free_port, wait  # noqa: E402

from dgxie import config, db  # noqa: E402
from dgxie.catalog import images  # noqa: E402
from dgxie.catalog.schemas import ImageIn  # noqa: E402
from dgxie.compose import build_context  # noqa: E402
from dgxie.nodes import service  # noqa: E402
from dgxie.nodes.schemas import NodeCreate  # noqa: E402


async def drive(port: int, paths: list[str], conns: int, seconds: float) -> tuple[float, float, float]:
    """(req/s, p50 ms, p99 ms) of `conns` connections cycling through `paths` for `seconds`."""
    cycle = itertools.cycle(paths)
    lat: list[float] = []
    end = time.perf_counter() + seconds

    async def one() -> None:
        c = Conn("127.0.0.1", port)
        while time.perf_counter() < end:
            t = time.perf_counter()
            r = await c.request("GET", next(cycle))
            if r.status != 200:
                raise SystemExit(f"HTTP {r.status}: {r.body[:200]!r}")
            lat.append(time.perf_counter() - t)
        c.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(conns)))
    took = time.perf_counter() - t0
    lat.sort()
    return len(lat) / took, lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("-c", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dgxie-ipxe-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = {"database_url": f"sqlite:///{tmp / 'dgxie.db'}", "data_dir": str(tmp / "data"), "public_url": url,
           "api": {"listen": f"127.0.0.1:{port}"}, "log_level": "warning",
           "boot": {"script_cache_seconds": 0},
           "profiles": {"dgx-worker": {"image": "ubuntu-24.04", "template": "ubuntu/autoinstall"}}}
    path = tmp / "dgxie.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ctx = build_context(config.load(path))
    with db.session_scope(ctx.sessions) as s:
        images.create_image(s, ImageIn(name="ubuntu-24.04", kernel="vmlinuz", initrd="initrd",
                                       cmdline="autoinstall ds=nocloud-net;s={base} console=ttyS0"), actor="bench")
    ctx = build_context(config.load(path))  # attaches the image to the config profile
    macs = [f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}" for i in range(a.nodes)]
    with db.session_scope(ctx.sessions) as s:
        for i, mac in enumerate(macs):
            service.create_node(s, ctx.site, NodeCreate(hostname=f"n{i:05d}", mac=mac, profile="dgx-worker"),
                                actor="bench")
    proc = subprocess.Popen([sys.executable, "-m", "dgxie", "serve", "--config", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait(url + "/healthz")
        scripts = [f"/boot/ipxe?mac={m}" for m in macs]
        asyncio.run(drive(port, scripts[:50], a.c, 1.0))  # warm up (imports, connections)
        ipxe = asyncio.run(drive(port, scripts, a.c, a.seconds))
        health = asyncio.run(drive(port, ["/healthz"], a.c, a.seconds))
        print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {os.cpu_count()} CPUs, "
              f"load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}; {a.nodes} nodes, {a.c} connections")
        print(f"uncached /boot/ipxe (a new MAC each request): {ipxe[0]:.0f} req/s, p50 {ipxe[1]:.1f} ms, "
              f"p99 {ipxe[2]:.1f} ms")
        print(f"/healthz (same server):                        {health[0]:.0f} req/s, p50 {health[1]:.1f} ms, "
              f"p99 {health[2]:.1f} ms")
        print(f"ratio uncached script / healthz: {ipxe[0] / health[0]:.2f}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


if __name__ == "__main__":
    main()
