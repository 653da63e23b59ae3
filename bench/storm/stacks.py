"""The two servers a storm runs against, each started in netns stmsrv on 10.210.0.1.

- `Dgxie`: `dgxie serve` (DHCP on stmv0s, TFTP :69, HTTP :8080), the kernel and initrd registered
  as image `storm` (os ubuntu: its user-data carries the events URL with the install credential),
  profile `storm`, nodes enrolled with `dgxie node import` (CSV, each with its fake BMC).
- `Peer`: the DGXIE stack: dnsmasq (DHCP + TFTP from /usr/lib/ipxe, its harness config:
  no-ping, authoritative; dhcp-lease-max raised to the pool) + nginx (one generic static iPXE
  script, the kernel and initrd, a static user-data whose endpoint is a `return 200` location).
Both are stopped by `stop()` (by their PIDs).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from netns import POOL, SERVER_IP, SRV, SRV_DEV, sh

DGXIE = str(Path(sys.executable).parent / "dgxie")
BASE = f"http://{SERVER_IP}:8080"


def payload(work: Path, kernel_mib: float, initrd_mib: float) -> tuple[Path, Path]:
    """A kernel and an initrd of the given sizes (sparse zeros: the bytes are not what is measured)."""
    k, i = work / "vmlinuz", work / "initrd.img"
    for p, mib in ((k, kernel_mib), (i, initrd_mib)):
        with p.open("wb") as f:
            f.truncate(int(mib * (1 << 20)))
    return k, i


class Stack:
    name = ""
    procs: list[subprocess.Popen[bytes]]

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def _wait_http(url: str, procs: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + 120
    while sh("ip", "netns", "exec", SRV, "curl", "-sf", "-m", "2", "-o", "/dev/null", url, check=False).returncode:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"server did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


class Dgxie(Stack):
    name = "dgxie"

    def __init__(self, work: Path, nodes: list[dict[str, Any]], kernel: Path, initrd: Path,
                 extra: dict[str, Any] | None = None) -> None:
        self.cfg = work / "dgxie.yaml"
        cfg: dict[str, Any] = {
            "database_url": f"sqlite:///{work}/dgxie.db", "data_dir": str(work / "data"), "log_level": "warning",
            "public_url": BASE, "api": {"listen": f"{SERVER_IP}:8080"},
            "dhcp": {"enabled": True, "interfaces": [SRV_DEV], "subnets": [
                {"cidr": "10.210.0.0/16", "pool": f"{POOL[0]}-{POOL[1]}", "routers": [SERVER_IP],
                 "lease_seconds": 3600}]},
            "tftp": {"enabled": True, "listen": f"{SERVER_IP}:69"},
            "profiles": {"storm": {"image": "storm"}},
            "bmc": {"allow_insecure_http": True},  # the fake BMCs speak plain HTTP
        }
        for k, v in (extra or {}).items():
            cfg[k] = cfg.get(k, {}) | v if isinstance(v, dict) else v
        self.cfg.write_text(yaml.safe_dump(cfg))
        self.cli = [DGXIE, "--config", str(self.cfg)]
        with (work / "nodes.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["hostname", "mac", "profile", "bmc_url", "bmc_username", "bmc_password"])
            for n in nodes:
                w.writerow([n["hostname"], n["mac"], "storm", n["bmc_url"], n["bmc_user"], n["bmc_password"]])
        t = time.monotonic()
        for cmd in (["image", "add", "storm", "--kernel", str(kernel), "--initrd", str(initrd),
                     "--cmdline", "console=ttyS0", "--os", "ubuntu"], ["node", "import", str(work / "nodes.csv")]):
            r = subprocess.run(self.cli + cmd, capture_output=True, text=True, timeout=3600)
            if r.returncode:
                raise RuntimeError(f"{cmd[:2]}: {r.stderr[-2000:]}")
        self.enroll_s = time.monotonic() - t
        self.log = work / "dgxie.log"
        self.procs = [subprocess.Popen(["ip", "netns", "exec", SRV, *self.cli, "serve"], stdout=self.log.open("wb"),
                                       stderr=subprocess.STDOUT)]
        _wait_http(f"{BASE}/healthz", self.procs, self.log)
        deadline = time.monotonic() + 60  # DHCP (:67) and TFTP (:69) bound too
        while time.monotonic() < deadline:
            udp = sh("ip", "netns", "exec", SRV, "ss", "-Hlun", check=False).stdout
            if ":67 " in udp and ":69 " in udp:
                break
            time.sleep(0.3)

    def power_on(self, batch: int, interval: float) -> subprocess.CompletedProcess[str]:
        """The waves: `dgxie node power on --all --batch N --interval S` (branch storm-ctl)."""
        return subprocess.run(["ip", "netns", "exec", SRV, *self.cli, "node", "power", "on", "--all", "--batch",
                               str(batch), "--interval", str(interval)], capture_output=True, text=True, timeout=7200)


NGINX = """worker_processes 1; daemon off; pid {w}/nginx.pid; error_log {w}/nginx.err;
events {{ worker_connections 20000; }}
http {{ access_log off; sendfile on; tcp_nopush on; keepalive_timeout 30;
  default_type application/octet-stream;
  server {{ listen {ip}:8080 backlog=16384; root {w}/www;
    location = /events {{ return 200 "{{}}"; }} }} }}
"""

DNSMASQ = """port=0
interface={dev}
bind-interfaces
user=root
dhcp-range={lo},{hi},255.255.0.0,1h
dhcp-leasefile={w}/dnsmasq.leases
dhcp-lease-max=20000
dhcp-authoritative
no-ping
enable-tftp
tftp-root=/usr/lib/ipxe
dhcp-userclass=set:ipxe,iPXE
dhcp-vendorclass=set:pxe,PXEClient
dhcp-match=set:efi64,option:client-arch,7
dhcp-match=set:efi64,option:client-arch,9
dhcp-boot=tag:ipxe,{base}/boot.ipxe
dhcp-boot=tag:!ipxe,tag:pxe,tag:efi64,ipxe.efi,,{ip}
dhcp-boot=tag:!ipxe,tag:pxe,tag:!efi64,undionly.kpxe,,{ip}
dhcp-option=tag:ipxe,encap:175,176,1
"""


class Peer(Stack):
    name = "peer"

    def __init__(self, work: Path, kernel: Path, initrd: Path) -> None:
        www = work / "www"
        (www / "seed").mkdir(parents=True)
        os.link(kernel, www / "vmlinuz")
        os.link(initrd, www / "initrd.img")
        (www / "boot.ipxe").write_text(f"#!ipxe\nkernel {BASE}/vmlinuz console=ttyS0 dgxie.seed={BASE}/seed/\n"
                                       f"initrd {BASE}/initrd.img\nboot\n")
        (www / "seed" / "user-data").write_text(f"#cloud-config\nreporting:\n  dgxie:\n    type: webhook\n"
                                                f"    endpoint: {BASE}/events\n")
        for d in (work, www, www / "seed"):
            d.chmod(0o755)
        (work / "nginx.conf").write_text(NGINX.format(w=work, ip=SERVER_IP))
        (work / "dnsmasq.conf").write_text(DNSMASQ.format(dev=SRV_DEV, lo=POOL[0], hi=POOL[1], w=work, base=BASE,
                                                          ip=SERVER_IP))
        self.log = work / "peer.log"
        log = self.log.open("wb")
        self.enroll_s = 0.0
        self.procs = [
            subprocess.Popen(["ip", "netns", "exec", SRV, "nginx", "-c", str(work / "nginx.conf"), "-p", str(work)],
                             stdout=log, stderr=subprocess.STDOUT),
            subprocess.Popen(["ip", "netns", "exec", SRV, "dnsmasq", "--keep-in-foreground", "--conf-file=" +
                              str(work / "dnsmasq.conf"), "--pid-file="], stdout=log, stderr=subprocess.STDOUT)]
        _wait_http(f"{BASE}/boot.ipxe", self.procs, self.log)
        time.sleep(1)
