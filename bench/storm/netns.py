"""The storm's two network namespaces (all names start with `stm`; deleted at the end).

    netns stmsrv: stmv0s 10.210.0.1/16 (the server under test: dgxie, or dnsmasq + nginx)
      `-- veth --> netns stmcli: stmv0c 10.210.0.2/16, promiscuous; `local 10.210.64.0/18` and
          `local 10.250.0.0/16` on lo (AnyIP), so the simulator can bind any leased address of the
          pool (10.210.64.0/18) and any fake BMC address (10.250.x.y) without adding 10,000
          addresses; the server reaches them by ARP over the veth (the client namespace answers).
No namespace has a route out. Simulated nodes send DHCP from their own MAC (AF_PACKET) and
everything after it from their own leased address.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

SRV, CLI = "stmsrv", "stmcli"
SRV_DEV, CLI_DEV = "stmv0s", "stmv0c"
SERVER_IP = "10.210.0.1"
CLIENT_IP = "10.210.0.2"
POOL = ("10.210.64.10", "10.210.127.250")  # 16,369 addresses: room for 10,000 nodes and their retries
POOL_NET = "10.210.64.0/18"
BMC_NET = "10.250.0.0/16"


def sh(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout)


def in_ns(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *args, check=check)


def down() -> None:
    """Kill whatever still runs in the storm namespaces, then delete them (and put back the host's
    ARP table size if `up` raised it)."""
    restore_host_neigh()
    for ns in (SRV, CLI):
        for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        sh("ip", "netns", "del", ns, check=False)


# The kernel's ARP table is not per namespace here (no gc_thresh under /proc/sys/net/ipv4/neigh in a
# namespace): its default 1,024 entries overflowed at 10,000 nodes ("neighbour: arp_cache: neighbor
# table overflow!" in dmesg; TFTP and HTTP answers to new addresses were dropped). A bench of more
# nodes raises it on the host for the run and puts the old values back (`down`); a real site needs
# the same (docs/boot-storm.md), which `dgxie serve` warns about.
HOST_NEIGH = {"net.ipv4.neigh.default.gc_thresh1": 32768, "net.ipv4.neigh.default.gc_thresh2": 65536,
              "net.ipv4.neigh.default.gc_thresh3": 131072}
_saved: dict[str, str] = {}


def _proc(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def raise_host_neigh(nodes: int) -> None:
    for key, value in HOST_NEIGH.items():
        with open(_proc(key)) as f:
            old = f.read().strip()
        if int(old) < value and nodes > int(old) // 2:
            _saved.setdefault(key, old)
            sh("sysctl", "-qw", f"{key}={value}")


def restore_host_neigh() -> None:
    for key, old in list(_saved.items()):
        sh("sysctl", "-qw", f"{key}={old}", check=False)
        del _saved[key]


def up(nodes: int = 0) -> None:
    down()
    raise_host_neigh(nodes)
    for ns in (SRV, CLI):
        sh("ip", "netns", "add", ns)
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        # 10,000 nodes: many sockets, many ARP entries (some of these are not per namespace here)
        for kv in ("net.ipv4.neigh.default.gc_thresh1=32768", "net.ipv4.neigh.default.gc_thresh2=65536",
                   "net.ipv4.neigh.default.gc_thresh3=131072", "net.core.somaxconn=16384",
                   "net.ipv4.tcp_max_syn_backlog=16384", "net.core.rmem_max=33554432"):
            in_ns(ns, "sysctl", "-qw", kv, check=False)
    in_ns(SRV, "ip", "link", "add", SRV_DEV, "type", "veth", "peer", "name", CLI_DEV, "netns", CLI)
    in_ns(SRV, "ip", "addr", "add", f"{SERVER_IP}/16", "dev", SRV_DEV)
    in_ns(SRV, "ip", "link", "set", SRV_DEV, "up")
    in_ns(SRV, "ip", "route", "add", BMC_NET, "via", CLIENT_IP)  # dgxie's BMC driver reaches the fake BMCs
    in_ns(CLI, "ip", "addr", "add", f"{CLIENT_IP}/16", "dev", CLI_DEV)
    in_ns(CLI, "ip", "link", "set", CLI_DEV, "up", "promisc", "on")
    in_ns(CLI, "ip", "route", "add", "local", POOL_NET, "dev", "lo")
    in_ns(CLI, "ip", "route", "add", "local", BMC_NET, "dev", "lo")
    in_ns(CLI, "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000")
