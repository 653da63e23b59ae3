"""Network namespaces for the DHCP end-to-end tests (all names start with `dd`).

    netns ddsrv: bridge ddbr0 10.201.0.1/24, route 10.202.0.0/24 via the relay (10.201.0.2)
      |-- veth ddv1s <-> ddv1c in netns ddcli1 (MAC 52:54:00:dd:00:01)
      |-- veth ddv2s <-> ddv2c in netns ddcli2 (MAC 52:54:00:dd:00:02)
      |-- veth ddv3s <-> ddv3c in netns ddcli3 (MAC 52:54:00:dd:00:03)
      `-- veth ddvrs <-> ddvrc in netns ddrly: 10.201.0.2/24, and 10.202.0.1/24 on its lo (a relay)
No namespace has a route out; everything is deleted in teardown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import REPO, SHARED

SRV, RELAY = "ddsrv", "ddrly"
CLIENTS = {1: "ddcli1", 2: "ddcli2", 3: "ddcli3"}
SERVER_IP = "10.201.0.1"


def client_mac(n: int) -> str:
    return f"52:54:00:dd:00:{n:02x}"


def sh(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout)


def in_ns(ns: str, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *args, check=check, timeout=timeout)


def all_ns() -> list[str]:
    return [SRV, RELAY, *CLIENTS.values()]


def teardown() -> None:
    for ns in all_ns():
        pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        sh("ip", "netns", "del", ns, check=False)


def setup() -> None:
    teardown()
    for ns in all_ns():
        sh("ip", "netns", "add", ns)
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    in_ns(SRV, "ip", "link", "add", "ddbr0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
    in_ns(SRV, "ip", "addr", "add", f"{SERVER_IP}/24", "dev", "ddbr0")
    in_ns(SRV, "ip", "link", "set", "ddbr0", "up")
    pairs = {f"ddv{n}": ns for n, ns in CLIENTS.items()} | {"ddvr": RELAY}
    for stem, ns in pairs.items():
        in_ns(SRV, "ip", "link", "add", f"{stem}s", "type", "veth", "peer", "name", f"{stem}c", "netns", ns)
        in_ns(SRV, "ip", "link", "set", f"{stem}s", "master", "ddbr0")
        in_ns(SRV, "ip", "link", "set", f"{stem}s", "up")
    for n, ns in CLIENTS.items():
        in_ns(ns, "ip", "link", "set", f"ddv{n}c", "address", client_mac(n))
        in_ns(ns, "ip", "link", "set", f"ddv{n}c", "up")
    in_ns(RELAY, "ip", "addr", "add", "10.201.0.2/24", "dev", "ddvrc")
    in_ns(RELAY, "ip", "link", "set", "ddvrc", "up")
    in_ns(RELAY, "ip", "addr", "add", "10.202.0.1/24", "dev", "lo")  # the relayed subnet's gateway
    in_ns(SRV, "ip", "route", "add", "10.202.0.0/24", "via", "10.201.0.2")


def write_config(path: Path, db_url: str, data_dir: Path, *, discovery: bool, api_port: int = 18080) -> Path:
    cfg = {
        "database_url": db_url, "data_dir": str(data_dir), "public_url": f"http://{SERVER_IP}:8080",
        "api": {"listen": f"127.0.0.1:{api_port}"},
        "dhcp": {"enabled": True, "interfaces": ["ddbr0"], "discovery": discovery, "subnets": [
            {"cidr": "10.201.0.0/24", "pool": "10.201.0.100-10.201.0.199", "routers": [SERVER_IP],
             "lease_seconds": 600},
            {"cidr": "10.202.0.0/24", "pool": "10.202.0.100-10.202.0.199", "routers": ["10.202.0.1"]},
        ]},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


class Served:
    """`dgxie serve` running in netns ddsrv until stopped (SIGTERM, or SIGKILL to test durability)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.fh = log.open("ab")
        dgxie = Path(sys.executable).parent / "dgxie"
        self.proc = subprocess.Popen(["ip", "netns", "exec", SRV, str(dgxie), "serve", "--config", str(config)],
                                     stdout=self.fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if "dhcp: serving on" in log.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dgxie serve did not start:\n{log.read_text(errors='replace')[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.fh.close()


def dhclient(n: int, work: Path, *, timeout: int = 20, release: bool = True) -> tuple[str | None, dict[str, str]]:
    """Run ISC dhclient -1 in client netns n (our -sf script: /etc/resolv.conf untouched); return
    the address it configured (None if it got no lease) and the options of its lease file."""
    ns, dev = CLIENTS[n], f"ddv{n}c"
    conf = work / f"dhclient{n}.conf"
    conf.write_text(f"timeout {timeout};\nretry 1;\ninitial-interval 1;\n")
    lease_file = work / f"dhclient{n}.leases"
    lease_file.unlink(missing_ok=True)  # a fresh DISCOVER every time (no INIT-REBOOT from a cache)
    in_ns(ns, "ip", "addr", "flush", "dev", dev)
    script = SHARED / "harness" / "tools" / "dhclient-script.sh"
    base = ["-sf", str(script), "-cf", str(conf), "-lf", str(lease_file), "-pf", str(work / f"dhclient{n}.pid")]
    env = dict(os.environ)
    r = subprocess.run(["ip", "netns", "exec", ns, "dhclient", "-1", "-v", *base, dev], capture_output=True,
                       text=True, timeout=timeout + 30, env=env)
    (work / f"dhclient{n}.log").write_text(r.stdout + r.stderr)
    addr = None
    out = in_ns(ns, "ip", "-4", "-o", "addr", "show", "dev", dev).stdout.split()
    if "inet" in out:
        addr = out[out.index("inet") + 1].split("/")[0]
    seen: dict[str, str] = {}  # the options of dhclient's last lease, from its lease file
    if lease_file.exists():
        for line in lease_file.read_text().splitlines():
            parts = line.strip().rstrip(";").split(None, 2)
            if len(parts) == 3 and parts[0] == "option":
                seen[parts[1]] = parts[2].strip('"')
            elif len(parts) >= 2 and parts[0] in ("fixed-address", "filename"):
                seen[parts[0]] = parts[1].strip('"')
    if r.returncode == 0 and release:
        subprocess.run(["ip", "netns", "exec", ns, "dhclient", "-r", *base, dev], capture_output=True, timeout=30,
                       env=env)
    elif r.returncode == 0:  # keep the lease: just stop the renewing daemon (-x: no RELEASE sent)
        subprocess.run(["ip", "netns", "exec", ns, "dhclient", "-x", *base, dev], capture_output=True, timeout=30,
                       env=env)
    return addr, seen


def run_py(ns: str, code: str, timeout: float = 30) -> Any:
    """Run python `code` in netns `ns` with the repo importable; returns its stdout."""
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=timeout, cwd=str(REPO))
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return r.stdout
