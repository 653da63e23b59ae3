"""Seed serving and callback ingest: `dgxie serve` vs nginx serving the same user-data statically.

Everything on loopback. Starts its own dgxie (SQLite in a temp dir) and its own nginx, runs
ApacheBench (`ab`) against each, prints requests/s and the ratio. dgxie's user-data comes from the
validated-render cache (`dgxie.install.cache`) after the first fetch; each fetch still looks the
node up by token and checks its address and state; the `install` credential minted at the first
fetch is carried again while it is live (no database write per re-fetch). Usage:

    .venv/bin/python bench/lifecycle/seed_bench.py [-n 2000] [-c 16]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dgxie import config, db  # noqa: E402
from dgxie.catalog import images  # noqa: E402
from dgxie.catalog.schemas import ImageIn  # noqa: E402
from dgxie.compose import build_context  # noqa: E402
from dgxie.nodes import service  # noqa: E402
from dgxie.nodes.credentials import boot_token  # noqa: E402
from dgxie.nodes.schemas import NodeCreate  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str) -> None:
    for _ in range(300):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def ab(url: str, n: int, c: int, post: Path | None = None) -> float:
    args = ["ab", "-q", "-n", str(n), "-c", str(c)]
    if post is not None:
        args += ["-p", str(post), "-T", "application/x-www-form-urlencoded"]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=600, check=True).stdout
    # ab counts replies of another length as "failed" (the callback reply's `logged` varies): ignore those
    m = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", out)
    broken = m is not None and any(int(x) for x in m.groups())
    if broken or re.search(r"Non-2xx responses:\s+(\d+)", out):
        raise SystemExit(f"errors from {url}:\n{out}")
    return float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("-c", type=int, default=16)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dgxie-lifecycle-bench-"))
    tmp.chmod(0o755)  # nginx workers run as nobody
    port, nport = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = {"database_url": f"sqlite:///{tmp / 'dgxie.db'}", "data_dir": str(tmp / "data"), "public_url": url,
           "api": {"listen": f"127.0.0.1:{port}"}, "log_level": "warning",
           "site": {"ssh_authorized_keys": ["ssh-ed25519 AAAAbench bench@dgxie"]},
           "profiles": {"dgx-worker": {"image": "ubuntu-24.04", "template": "ubuntu/autoinstall",
                                       "vars": {"disk_layout": "raid1", "os_disks": ["/dev/nvme0n1", "/dev/nvme1n1"]}}},
           "install": {"progress_interval_seconds": 5},
           "boot": {"trusted_networks": ["127.0.0.0/8"]}}  # ab runs on loopback: a trusted relay
    path = tmp / "dgxie.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ctx = build_context(config.load(path))
    with db.session_scope(ctx.sessions) as s:
        images.create_image(s, ImageIn(name="ubuntu-24.04", kernel="k", initrd="i"), actor="bench")
    ctx = build_context(config.load(path))  # attaches the image to the config profile
    with db.session_scope(ctx.sessions) as s:
        seed_tok = boot_token(ctx.site.box, service.create_node(
            s, ctx.site, NodeCreate(hostname="seed", mac="02:00:00:00:00:01", profile="dgx-worker"), actor="bench"))
        cb_tok = boot_token(ctx.site.box, service.create_node(
            s, ctx.site, NodeCreate(hostname="chatty", mac="02:00:00:00:00:02", profile="dgx-worker"), actor="bench"))
    procs = []
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "dgxie", "serve", "--config", str(path)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        wait(url + "/healthz")
        text = httpx.get(f"{url}/boot/n/{seed_tok}/user-data").text
        (tmp / "www").mkdir()
        (tmp / "www" / "user-data").write_text(text)
        (tmp / "nginx.conf").write_text(
            f"daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err;\n"
            f"events {{}} http {{ access_log off; server {{ listen 127.0.0.1:{nport}; root {tmp}/www; }} }}\n")
        procs.append(subprocess.Popen(["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp)],
                                      start_new_session=True))
        wait(f"http://127.0.0.1:{nport}/user-data")
        body = tmp / "progress"
        body.write_text("event=progress&message=bench")
        httpx.get(f"{url}/boot/n/{cb_tok}/user-data")  # the chatty node is installing
        d = ab(f"{url}/boot/n/{seed_tok}/user-data", a.n, a.c)
        ng = ab(f"http://127.0.0.1:{nport}/user-data", a.n, a.c)
        # no warm-up: after the quiet spell (user-data goes by the fast path) the admission gate
        # queues the burst as usual (api/admission.py measures only busy seconds)
        cb = ab(f"{url}/boot/n/{cb_tok}/events", a.n, a.c, post=body)
        print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {os.cpu_count()} CPUs, "
              f"load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
        print(f"user-data ({len(text)} B), ab -n {a.n} -c {a.c}: dgxie {d:.0f} req/s (cached render, the live "
              f"credential re-used), nginx static {ng:.0f} req/s, ratio {d / ng:.3f}")
        print(f"progress callbacks, ab -n {a.n} -c {a.c}: dgxie {cb:.0f} req/s (one node, aggregated)")
        with db.session_scope(ctx.sessions) as s:
            from dgxie import events
            n = service.get_node(s, "chatty")
            logged = len(events.list_events(s, node=n, limit=100000))
        print(f"events rows for the chatty node after {a.n} progress callbacks: {logged}")
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)


if __name__ == "__main__":
    main()
