"""Two `dgxie serve` DHCP servers on one bridge, for the HA end-to-end test (names start `ddha`).

    netns ddhabr: bridge ddhabr0 (a switch, no address)
      |-- ddhas1 <-> netns ddhasrv1: 10.203.0.1/16  `dgxie serve` boot-a (server 0, lower half)
      |-- ddhas2 <-> netns ddhasrv2: 10.203.0.2/16  `dgxie serve` boot-b (server 1, upper half)
      |-- ddhag  <-> netns ddhagen:  10.203.0.10/16 perfdhcp (a relay agent, broadcasting) + reply sniffer
      |-- ddhacN <-> netns ddhacliN: dhclient with a chosen MAC
      `-- ddhahb <-> ddhah in this (the test's) namespace: 10.203.0.20/16, only with setup(bmc_port=True):
          the fake BMCs the scale-out test serves from its own process (tests/support/scaleout.py)
Every name takes a prefix `p` (default "ddha"; tests/support/scaleout.py uses "ddso", so the
two tests can run at once). The servers reach PostgreSQL through its Unix socket (the file system is not namespaced). No
namespace has a route out; `teardown()` kills every process in them and deletes them.
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

from tests.support.paths import REPO

BRIDGE_NS, GEN = "ddhabr", "ddhagen"
SERVERS = {"boot-a": ("ddhasrv1", "10.203.0.1"), "boot-b": ("ddhasrv2", "10.203.0.2")}
GEN_IP = "10.203.0.10"
BMC_IP = "10.203.0.20"  # the test process's own address on the bridge (setup(bmc_port=True))
POOL = ("10.203.1.0", "10.203.8.255")
API_PORT = 18093

SNIFFER = r"""
import socket, struct, sys, time
from dgxie.netboot.dhcp import codec as c
out, until = open(sys.argv[1], "w", buffering=1), time.time() + float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.bind((sys.argv[3], 0))
s.settimeout(0.5)
print("ready", flush=True)
while time.time() < until:
    try:
        ip = s.recv(65535)
    except TimeoutError:
        continue
    if len(ip) < 28 or ip[9] != 17:
        continue
    udp = (ip[0] & 15) * 4
    sport, dport = struct.unpack("!HH", ip[udp:udp + 4])
    if sport != 67:
        continue
    try:
        p = c.decode(ip[udp + 8:])
    except Exception:
        continue
    if p.op != 2 or p.msg_type is None:
        continue
    sid = p.options.get(c.OPT_SERVER_ID, b"")
    out.write(f"{time.time():.3f} {p.msg_type} {p.mac.hex(':')} {socket.inet_ntoa(p.yiaddr)} "
              f"{socket.inet_ntoa(sid) if len(sid) == 4 else '-'}\n")
"""


def sh(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout)


def in_ns(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *args, check=check)


def client_ns(n: int, p: str = "ddha") -> str:
    return f"{p}cli{n}"


def gen_ns(p: str = "ddha") -> str:
    return f"{p}gen"


def server_ns(name: str, p: str = "ddha") -> str:
    return f"{p}srv{list(SERVERS).index(name) + 1}"


def all_ns(clients: int, p: str = "ddha") -> list[str]:
    return [f"{p}br", gen_ns(p), *(server_ns(n, p) for n in SERVERS), *(client_ns(n, p) for n in range(clients))]


def teardown(clients: int, p: str = "ddha") -> None:
    for ns in all_ns(clients, p):
        for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        sh("ip", "netns", "del", ns, check=False)


def _port(p: str, ns: str, stem: str, addr: str | None, mac: str | None = None) -> None:
    in_ns(f"{p}br", "ip", "link", "add", f"{stem}b", "type", "veth", "peer", "name", stem, "netns", ns)
    in_ns(f"{p}br", "ip", "link", "set", f"{stem}b", "master", f"{p}br0")
    in_ns(f"{p}br", "ip", "link", "set", f"{stem}b", "up")
    if mac:
        in_ns(ns, "ip", "link", "set", stem, "address", mac)
    if addr:
        in_ns(ns, "ip", "addr", "add", f"{addr}/16", "dev", stem)
    in_ns(ns, "ip", "link", "set", stem, "up")


def setup(client_macs: list[str], bmc_port: bool = False, p: str = "ddha") -> None:
    """The namespaces and links above; client n (netns `client_ns(n)`, device {p}c{n}) has MAC n;
    the generator's device is {p}g. `bmc_port`: also this namespace's {p}h with BMC_IP."""
    teardown(len(client_macs), p)
    sh("ip", "link", "del", f"{p}h", check=False)
    for ns in all_ns(len(client_macs), p):
        sh("ip", "netns", "add", ns)
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    in_ns(f"{p}br", "ip", "link", "add", f"{p}br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
    in_ns(f"{p}br", "ip", "link", "set", f"{p}br0", "up")
    for i, (name, (_, addr)) in enumerate(SERVERS.items(), 1):
        _port(p, server_ns(name, p), f"{p}s{i}", addr)
    _port(p, gen_ns(p), f"{p}g", GEN_IP)
    for n, mac in enumerate(client_macs):
        _port(p, client_ns(n, p), f"{p}c{n}", None, mac)
    if bmc_port:  # deleted with the bridge's namespace (its peer end lives there)
        sh("ip", "link", "add", f"{p}h", "type", "veth", "peer", "name", f"{p}hb", "netns", f"{p}br")
        in_ns(f"{p}br", "ip", "link", "set", f"{p}hb", "master", f"{p}br0")
        in_ns(f"{p}br", "ip", "link", "set", f"{p}hb", "up")
        sh("ip", "addr", "add", f"{BMC_IP}/16", "dev", f"{p}h")
        sh("ip", "link", "set", f"{p}h", "up")


def write_config(work: Path, name: str, db_url: str, extra: dict[str, Any] | None = None, p: str = "ddha") -> Path:
    """Server `name`'s config; `extra` adds top-level sections (e.g. `instance`, `bmc`)."""
    addr = SERVERS[name][1]
    partner = next(n for n in SERVERS if n != name)
    cfg = {"database_url": db_url, "data_dir": str(work / name), "public_url": f"http://{addr}:8080",
           "api": {"listen": f"127.0.0.1:{API_PORT}"},
           "dhcp": {"enabled": True, "interfaces": [f"{p}s{list(SERVERS).index(name) + 1}"], "discovery": True,
                    "discovery_max_nodes": 100000, "discovery_rate": 100000, "discovery_interval": 1,
                    "pool_reserve": 0, "ha": {"this": name, "partner": partner},
                    "subnets": [{"cidr": "10.203.0.0/16", "pool": f"{POOL[0]}-{POOL[1]}", "lease_seconds": 600}]},
           **(extra or {})}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class Serve:
    """`dgxie serve --config` in the server's netns (`ip netns exec` execs it: same pid)."""

    def __init__(self, work: Path, name: str, db_url: str, extra: dict[str, Any] | None = None,
                 p: str = "ddha") -> None:
        self.name, self.log = name, work / f"{name}.log"
        cfg = write_config(work, name, db_url, extra, p)
        dgxie = Path(sys.executable).parent / "dgxie"
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(["ip", "netns", "exec", server_ns(name, p), str(dgxie), "serve", "--config",
                                          str(cfg)], stdout=fh, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_serving(self, deadline: float) -> None:
        while "dhcp: serving on" not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"{self.name} did not start:\n{self.text()[-3000:]}")
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def dhclient_conf(work: Path) -> Path:
    conf = work / "dhclient.conf"  # retry about every second (backoff-cutoff), give up after 20 s
    conf.write_text("timeout 20;\nretry 1;\ninitial-interval 1;\nbackoff-cutoff 1;\n")
    return conf


def run_dhclient(n: int, work: Path, conf: Path, out: dict[int, tuple[float, str | None]], t0: float,
                 p: str = "ddha") -> None:
    """ISC dhclient -1 in client namespace n: out[n] = (seconds from `t0` to bound, the address or
    None); its log in work/dhcN.log; then stopped (-x: the lease is kept, no RELEASE)."""
    ns, dev = client_ns(n, p), f"{p}c{n}"
    script = REPO.parent / "shared" / "harness" / "tools" / "dhclient-script.sh"
    args = ["-sf", str(script)] if script.exists() else []
    files = ["-cf", str(conf), "-lf", str(work / f"dhc{n}.leases"), "-pf", str(work / f"dhc{n}.pid")]
    r = subprocess.run(["ip", "netns", "exec", ns, "dhclient", "-1", "-v", *args, *files, dev],
                       capture_output=True, text=True, timeout=60)
    took = time.time() - t0
    (work / f"dhc{n}.log").write_text(r.stdout + r.stderr)
    words = in_ns(ns, "ip", "-4", "-o", "addr", "show", "dev", dev).stdout.split()
    addr = words[words.index("inet") + 1].split("/")[0] if "inet" in words else None
    if addr is None:  # no -sf script: read the bound address from dhclient's log
        for line in (r.stdout + r.stderr).splitlines():
            if line.startswith("bound to "):
                addr = line.split()[2]
    out[n] = (took, addr)
    subprocess.run(["ip", "netns", "exec", ns, "dhclient", "-x", *args, *files, dev], capture_output=True, timeout=30)
