"""DHCP storm with discovery on (issue 12): perfdhcp (relay mode) sends DORAs from unknown MACs
at a fixed rate against `dgxie serve`; every client also becomes a discovered node, so node
creation (~170/s) falls far behind. Measured: the lease write lag (sampled from /metrics every
0.5 s), bound leases vs rows on disk 1 s after the load stops, how long SIGTERM takes, and in a
second run how many leases a kill -9 in the middle of the storm loses.

    sudo .venv/bin/python bench/dhcp/storm.py [--rate 8000] [--period 8] [--limits default|off]

`--limits off` (the issue's scenario) lifts the discovery cap and rate so the backlog is as
large as the storm makes it; `default` keeps the shipped limits (1,000 nodes, 100/min).
Namespaces `ddbsrv1`/`ddbgen1` as in bench.py (deleted at the end); server on core 0, perfdhcp
on core 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import PAIRS, netns_down, netns_up, sh  # the same namespaces as bench.py

SRV, GEN = PAIRS["dgxie"]
API = "127.0.0.1:18099"


def start(work: Path, limits: str) -> subprocess.Popen[bytes]:
    dhcp: dict[str, object] = {"enabled": True, "interfaces": ["ddbs0"], "discovery": True, "subnets": [
        {"cidr": "10.201.0.0/24"}, {"cidr": "10.202.0.0/16", "pool": "10.202.1.0-10.202.255.250"}]}
    if limits == "off":
        dhcp |= {"discovery_max_nodes": 10**7, "discovery_rate": 10**7, "discovery_interval": 1}
    cfg = {"database_url": f"sqlite:///{work}/dgxie.db", "data_dir": str(work / "data"), "log_level": "info",
           "public_url": "http://10.201.0.1:8080", "api": {"listen": API}, "dhcp": dhcp}
    (work / "dgxie.yaml").write_text(yaml.safe_dump(cfg))
    log = work / "dgxie.log"
    dgxie = str(Path(sys.executable).parent / "dgxie")
    p = subprocess.Popen(["ip", "netns", "exec", SRV, "taskset", "-c", "0", dgxie, "serve", "--config",
                          str(work / "dgxie.yaml")], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    while "dhcp: serving on" not in log.read_text(errors="replace"):
        if p.poll() is not None:
            raise RuntimeError(log.read_text(errors="replace")[-2000:])
        time.sleep(0.3)
    return p


def metrics() -> dict[str, float]:
    text = sh("ip", "netns", "exec", SRV, "curl", "-s", "-m", "10", f"http://{API}/metrics", check=False)
    out = {}
    for name in ("dgxie_dhcp_leases_in_use", "dgxie_dhcp_discovery_pending", "dgxie_dhcp_lease_write_lag_seconds"):
        out[name] = sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))
    out["refused"] = sum(float(v) for v in re.findall(r"^dgxie_dhcp_discovery_refused_total{[^}]*} (\S+)$", text, re.M))
    return out


def rows(work: Path) -> int:
    with contextlib.closing(sqlite3.connect(work / "dgxie.db", timeout=30)) as conn:
        return int(conn.execute("SELECT count(*) FROM dhcp_leases").fetchone()[0])


def perfdhcp(rate: int, period: int, base: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", GEN, "taskset", "-c", "1", "perfdhcp", "-4", "-l", "ddbg0", "-r",
                             str(rate), "-p", str(period), "-R", "50000", "-b", f"mac={base}", "-W", "200000",
                             "10.201.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def sample_lag(stop: threading.Event, worst: list[float]) -> None:
    while not stop.wait(0.5):
        worst.append(metrics()["dgxie_dhcp_lease_write_lag_seconds"])


def nodes(work: Path) -> int:
    with contextlib.closing(sqlite3.connect(work / "dgxie.db", timeout=30)) as conn:
        return int(conn.execute("SELECT count(*) FROM nodes WHERE state = 'discovered'").fetchone()[0])


def run(args: argparse.Namespace, work: Path) -> None:
    proc = start(work, args.limits)
    began = time.monotonic()
    stop, lags = threading.Event(), []
    t = threading.Thread(target=sample_lag, args=(stop, lags))
    t.start()
    out, _ = perfdhcp(args.rate, args.period, "00:0c:01:00:00:00").communicate()
    stopped = time.monotonic()
    stop.set()
    t.join()
    m = metrics()
    time.sleep(max(0.0, stopped + 1.0 - time.monotonic()))
    on_disk = rows(work)
    acks = re.findall(r"received packets: (\d+)", out)
    print(f"storm {args.rate}/s x {args.period} s, limits {args.limits}: ACKs received by perfdhcp "
          f"{acks[-1] if acks else '?'}, bound leases {m['dgxie_dhcp_leases_in_use']:.0f}, discovery backlog "
          f"{m['dgxie_dhcp_discovery_pending']:.0f}, refused by limits {m['refused']:.0f}")
    print(f"  lease write lag sampled every 0.5 s during the storm: max {max(lags, default=0):.2f} s")
    print(f"  rows on disk 1 s after the load stopped: {on_disk} of {m['dgxie_dhcp_leases_in_use']:.0f}", flush=True)
    drain_deadline = time.monotonic() + 120
    while metrics()["dgxie_dhcp_discovery_pending"] > 0 and time.monotonic() < drain_deadline:
        time.sleep(0.25)
    made, took_all = nodes(work), time.monotonic() - began
    print(f"  discovered nodes created: {made} in {took_all:.1f} s from the storm's start "
          f"({made / took_all:.0f} nodes/s; backlog {metrics()['dgxie_dhcp_discovery_pending']:.0f} left)", flush=True)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
        took = f"{time.monotonic() - t0:.2f} s"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        took = "still running after 30 s (killed)"
    print(f"  SIGTERM -> exit: {took}; rows after exit: {rows(work)}")


def run_kill(args: argparse.Namespace, work: Path) -> None:
    proc = start(work, args.limits)
    gen = perfdhcp(args.rate, args.period, "00:0c:02:00:00:00")
    time.sleep(args.period / 2)
    m = metrics()
    seen = time.monotonic()
    time.sleep(max(0.0, seen + 1.0 - time.monotonic()))
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    gen.wait(args.period + 30)
    print(f"  kill -9 mid-storm: {rows(work)} rows on disk; {m['dgxie_dhcp_leases_in_use']:.0f} leases were bound "
          f"1 s before the kill")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=8000)
    ap.add_argument("--period", type=int, default=8)
    ap.add_argument("--limits", choices=["default", "off"], default="off")
    ap.add_argument("--work", default="/tmp/dd-bench-storm")
    args = ap.parse_args()
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} load average {os.getloadavg()}")
    netns_up()
    try:
        for name, fn in (("sigterm", run), ("kill", run_kill)):
            work = Path(args.work) / name
            sh("rm", "-rf", str(work))
            work.mkdir(parents=True)
            fn(args, work)
    finally:
        netns_down()
    print(f"# load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
