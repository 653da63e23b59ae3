"""What the VM end-to-end tests share: commands in a network namespace, a bridge with taps in a
fresh namespace, the netboot payload, the IPv6 router-advertisement daemon iPXE waits for, and
stopping the processes a test started.

`bridge_ns(ns, bridge, ipv4_cidr, ipv6_cidr, taps)` makes namespace `ns` (deleting any leftover of
that name) holding `bridge` with both addresses and the named taps enslaved; `delete_ns(ns)` kills
what still runs in it and deletes it. Nothing here touches the host's own network.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from tests.support.paths import REPO


def sh(*cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout)


def in_ns(ns: str, *cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *cmd, check=check, timeout=timeout)


def netboot_payload() -> Path:
    """The e2e kernel + initrd (tests/e2e/netboot_payload.sh), built once into the test cache."""
    cache = Path(os.environ.get("DGXIE_TEST_CACHE", "/var/cache/dgxie-test")) / "netboot"
    r = subprocess.run(["bash", str(REPO / "tests/e2e/netboot_payload.sh"), str(cache)], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return cache


def bridge_ns(ns: str, bridge: str, ipv4_cidr: str, ipv6_cidr: str, taps: Sequence[str]) -> None:
    """A new namespace `ns` with `bridge` up (STP off, no forwarding delay) and `taps` on it."""
    sh("ip", "netns", "del", ns, check=False)
    sh("ip", "netns", "add", ns)
    in_ns(ns, "ip", "link", "set", "lo", "up")
    in_ns(ns, "ip", "link", "add", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
    in_ns(ns, "ip", "addr", "add", ipv4_cidr, "dev", bridge)
    in_ns(ns, "ip", "addr", "add", ipv6_cidr, "dev", bridge, "nodad")
    in_ns(ns, "ip", "link", "set", bridge, "up")
    for tap in taps:
        in_ns(ns, "ip", "tuntap", "add", "dev", tap, "mode", "tap")
        in_ns(ns, "ip", "link", "set", tap, "master", bridge)
        in_ns(ns, "ip", "link", "set", tap, "up")


def delete_ns(ns: str) -> None:
    """Kill every process left in `ns`, then delete it."""
    for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
        sh("kill", "-9", pid, check=False)
    sh("ip", "netns", "del", ns, check=False)


def ra_daemon(ns: str, bridge: str, prefix: str, log: Path, out: IO[bytes]) -> subprocess.Popen[bytes]:
    """dnsmasq sending only IPv6 router advertisements for `prefix` (e.g. `fd03::`) on `bridge`:
    iPXE waits for one before it boots."""
    return subprocess.Popen(["ip", "netns", "exec", ns, "dnsmasq", "--keep-in-foreground", "--port=0", "--user=root",
                             f"--interface={bridge}", "--bind-interfaces", "--enable-ra",
                             f"--dhcp-range={prefix},ra-only,64,10m", "--pid-file=", f"--log-facility={log}"],
                            stdout=out, stderr=subprocess.STDOUT)


def stop(procs: Sequence[subprocess.Popen[bytes]], wait: float = 15) -> None:
    """SIGTERM each process still running, then wait `wait` s for each before SIGKILL."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
