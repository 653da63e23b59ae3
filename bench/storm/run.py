"""Boot storm, side by side: the same N simulated nodes against dgxie and against dnsmasq + nginx.

    sudo .venv/bin/python bench/storm/run.py --nodes 1000 [--stacks dgxie,peer] [--kernel-mib 10]
        [--initrd-mib 60] [--waves BATCH:INTERVAL] [--deadline 1800] [--json out.json]

For each stack: namespaces up (netns.py), the server started (stacks.py), the simulator
(sim.py) run in the client namespace, the server stopped, namespaces down. "All at once": every
node powers on at t=0. `--waves B:S` (dgxie only): nodes stay off until `dgxie node power on --all
--batch B --interval S` powers them on through their fake Redfish BMCs. Printed: per-phase latency
(p50/p90/p99/max, s), retries and failures per phase, time to all installed, and what the run cost
(CPU seconds and peak RSS of the server and of the simulator; load average before and after).
Exit 1 when any node failed (so a smoke run can assert on it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netns
import stacks
from bmc import PASSWORD, USER, bmc_ip

PHASES = ("dhcp_pxe", "tftp", "dhcp_ipxe", "script", "kernel", "initrd", "seed", "callbacks", "reboot")


def node_specs(n: int) -> list[dict[str, Any]]:
    """Node i: MAC 52:54:10:xx:xx:xx, arch 0 (BIOS) for even i and 7 (UEFI x64) for odd i."""
    return [{"hostname": f"storm{i:05d}", "mac": f"52:54:10:{i >> 16:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}",
             "arch": 0 if i % 2 == 0 else 7, "bmc_url": f"http://{bmc_ip(i)}:8000", "bmc_user": USER,
             "bmc_password": PASSWORD} for i in range(n)]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


class Sampler(threading.Thread):
    """CPU seconds and peak RSS (MiB) of a set of process trees, sampled every second."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.stop_ev, self.cpu, self.rss = pids, threading.Event(), 0.0, 0.0

    def _tree(self) -> list[int]:
        out, todo = [], list(self.pids)
        while todo:
            p = todo.pop()
            out.append(p)
            with contextlib.suppress(OSError):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        return out

    def run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self.stop_ev.wait(1.0):
            cpu = rss = 0.0
            for p in self._tree():
                try:
                    f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                    cpu += (int(f[11]) + int(f[12])) / tick
                    rss += int(f[21]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
                except (OSError, IndexError, ValueError):
                    pass
            self.cpu, self.rss = max(self.cpu, cpu), max(self.rss, rss)


def udp_drops(ns: str) -> dict[str, int]:
    """The namespace's UDP receive-buffer and in-error drop counters (/proc/net/snmp)."""
    lines = [ln.split() for ln in netns.in_ns(ns, "cat", "/proc/net/snmp").stdout.splitlines() if ln.startswith("Udp:")]
    row = dict(zip(lines[0][1:], (int(v) for v in lines[1][1:]), strict=True))
    return {"RcvbufErrors": row.get("RcvbufErrors", 0), "InErrors": row.get("InErrors", 0)}


def run_stack(name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    specs = node_specs(args.nodes)
    netns.up(args.nodes)
    stack: stacks.Stack | None = None
    try:
        kernel, initrd = stacks.payload(work, args.kernel_mib, args.initrd_mib)
        stack = stacks.Dgxie(work, specs, kernel, initrd) if name == "dgxie" else stacks.Peer(work, kernel, initrd)
        start = "bmc" if args.waves and name == "dgxie" else "all"
        plan = {"server": netns.SERVER_IP, "stack": name, "start": start, "deadline": args.deadline,
                "reboot_delay": args.reboot_delay,
                "nodes": [{"mac": s["mac"], "arch": s["arch"]} for s in specs]}
        (work / "plan.json").write_text(json.dumps(plan))
        sampler = Sampler(stack.pids())
        sampler.start()
        t0 = time.monotonic()
        sim = subprocess.Popen(["ip", "netns", "exec", netns.CLI, sys.executable, str(Path(__file__).parent / "sim.py"),
                                str(work / "plan.json"), str(work / "result.json")], stdout=subprocess.PIPE,
                               stderr=(work / "sim.err").open("wb"), text=True)
        power = None
        if start == "bmc":
            assert sim.stdout is not None
            line = sim.stdout.readline()
            if "bmcs ready" not in line:
                raise RuntimeError(f"simulator: {line!r} {(work / 'sim.err').read_text()[-2000:]}")
            batch, interval = args.waves.split(":")
            assert isinstance(stack, stacks.Dgxie)
            power = stack.power_on(int(batch), float(interval))
            (work / "result.json.power-done").write_text(str(power.returncode))
        sim.wait(args.deadline + 120)
        sampler.stop_ev.set()
        sampler.join()
        drops = {"server": udp_drops(netns.SRV), "clients": udp_drops(netns.CLI)}
        counters = []
        if name == "dgxie":  # dgxie's own DHCP/TFTP/HTTP-limit counters, for the why of a failure
            text = netns.in_ns(netns.SRV, "curl", "-s", "-m", "30", f"{stacks.BASE}/metrics", check=False).stdout
            counters = [ln for ln in text.splitlines() if ln.startswith(("dgxie_dhcp_requests", "dgxie_tftp_trans",
                                                                         "dgxie_http_refused", "dgxie_admission"))
                        and not ln.endswith((" 0", " 0.0"))]
        if sim.returncode:
            raise RuntimeError(f"simulator exit {sim.returncode}: {(work / 'sim.err').read_text()[-3000:]}")
        res: dict[str, Any] = json.loads((work / "result.json").read_text())
        res |= {"stack": name, "start": start, "server_cpu_s": sampler.cpu, "server_maxrss_mib": sampler.rss,
                "wall_s": time.monotonic() - t0, "enroll_s": stack.enroll_s, "udp_drops": drops,
                "server_counters": counters}
        if power is not None:
            res["power_cli"] = {"rc": power.returncode, "out": power.stdout[-1500:], "err": power.stderr[-1500:]}
        return res
    finally:
        if stack is not None:
            stack.stop()
            with contextlib.suppress(OSError):  # kept for a look after the run
                shutil.copy(stack.log, f"/tmp/dgxie-bench-storm-{name}.log")
        netns.down()


def summarize(res: dict[str, Any]) -> list[str]:
    nodes = res["nodes"]
    failed = [n for n in nodes if n["failed"]]
    installed = [n["installed"] for n in nodes if n.get("installed") is not None]
    first_on = min((n["on"] for n in nodes if n.get("on") is not None), default=0.0)
    done_all = f"{max(installed) - first_on:.1f} s" if len(installed) == len(nodes) else \
        f"not all: {len(installed)} of {len(nodes)} installed"
    out = [f"## {res['stack']} ({res['start']}): {len(nodes)} nodes, {len(failed)} failed; "
           f"time to all installed {done_all}",
           "| phase | n | p50 s | p90 s | p99 s | max s | retries | failures |", "|---|---|---|---|---|---|---|---|"]
    for ph in PHASES:
        xs = [n["phases"][ph] for n in nodes if ph in n["phases"]]
        retries = sum(n["retries"].get(ph, 0) for n in nodes)
        fails = sum(1 for n in failed if n["failed"] == ph)
        out.append(f"| {ph} | {len(xs)} | {pct(xs, 50):.3f} | {pct(xs, 90):.3f} | {pct(xs, 99):.3f} | "
                   f"{max(xs, default=float('nan')):.3f} | {retries} | {fails} |")
    other = {n["failed"] for n in failed} - set(PHASES)
    for ph in sorted(other):
        out.append(f"| {ph} | | | | | | | {sum(1 for n in failed if n['failed'] == ph)} |")
    causes: dict[str, int] = {}
    for n in nodes:
        for ph, cs in n.get("causes", {}).items():
            for c, k in cs.items():
                causes[f"{ph} {c}"] = causes.get(f"{ph} {c}", 0) + k
    if causes:
        out.append("HTTP retries by cause: " + ", ".join(f"{k} x{v}" for k, v in sorted(causes.items())))
    out.append(f"UDP datagrams dropped for a full receive buffer: server namespace "
               f"{res['udp_drops']['server']['RcvbufErrors']}, client namespace "
               f"{res['udp_drops']['clients']['RcvbufErrors']}")
    out.append(f"DHCP NAKs received (each restarts DISCOVER): {res.get('dhcp_naks', 0)} "
               f"{json.dumps(res.get('nak_messages', {}))}")
    local = sum(1 for n in nodes if n.get("reboot_local"))
    out.append(f"after install, the script boots the local disk for {local} of {len(installed)} installed nodes")
    out.append(f"cost: server {res['server_cpu_s']:.0f} CPU s, peak RSS {res['server_maxrss_mib']:.0f} MiB; "
               f"simulator {res['sim_cpu_s']:.0f} CPU s, peak RSS {res['sim_maxrss_mib']:.0f} MiB; "
               f"run {res['wall_s']:.0f} s; enroll {res['enroll_s']:.1f} s")
    errs: dict[str, int] = {}
    for n in failed:
        key = f"{n['failed']}: {(n['error'] or '')[:120]}"
        errs[key] = errs.get(key, 0) + 1
    out += [f"  {c} x {k}" for k, c in sorted(errs.items(), key=lambda kv: -kv[1])[:8]]
    if "power_cli" in res:
        out.append(f"power on CLI: exit {res['power_cli']['rc']} {res['power_cli']['err'][-300:].strip()}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--stacks", default="dgxie,peer")
    ap.add_argument("--kernel-mib", type=float, default=10.0)
    ap.add_argument("--initrd-mib", type=float, default=60.0)
    ap.add_argument("--waves", default="", help="BATCH:INTERVAL: power on through the BMCs in waves (dgxie)")
    ap.add_argument("--deadline", type=float, default=1800.0, help="seconds a run may take")
    ap.add_argument("--reboot-delay", type=float, default=3.0, help="seconds from finished to the next DHCP")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    print(f"# boot storm {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: {args.nodes} nodes, kernel "
          f"{args.kernel_mib} MiB + initrd {args.initrd_mib} MiB, waves {args.waves or 'none (all at once)'}; "
          f"load average {os.getloadavg()}", flush=True)
    results, bad = [], 0
    for name in args.stacks.split(","):
        with tempfile.TemporaryDirectory(prefix=f"stm-{name}-") as tmp:
            res = run_stack(name, args, Path(tmp))
        results.append(res)
        bad += sum(1 for n in res["nodes"] if n["failed"])
        print("\n".join(summarize(res)), flush=True)
    print(f"# load average after: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(results))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
