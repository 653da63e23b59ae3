"""The deploy end-to-end test's machinery (tests/e2e/test_deploy_vm.py, bench/deploy/).

- `prepare_builder()`: the Debian mirror (tests/support/debian_mirror.py), then `dgxie image build`
  and `dgxie agent build` in a builder state kept in the test cache (SQLite + data dir), so a rerun
  builds nothing (both builds are keyed by their inputs).
- `serve()`: namespace `dpsrv` (no route out) with bridge `dpbr0`, taps for the VMs, a copy of the
  builder's database, an OCI mirror of a small image from a local docker-registry, and `dgxie
  serve` (DHCP with discovery, TFTP, HTTP); a packet capture of the bridge for `strangers()`.
- `VM`: QEMU (TCG) with an empty raw disk, PXE first, the disk second.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support import vmnet
from tests.support.debian_mirror import cache_dir, sync_debian_mirror
from tests.support.oci import Layout, add_image, docker_registry, push

NS, BR = "dpsrv", "dpbr0"
SRV = "10.204.0.1"
PORT = 8080
OVMF_CODE, OVMF_VARS = Path("/usr/share/OVMF/OVMF_CODE_4M.fd"), Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
DISK_BYTES = 6 << 30
IMAGE = "debian-12"
CORRUPT = "debian-12-corrupt"  # the same files, but the rootfs sha256 it promises is wrong
TAPS = 6
BOOTSTRAP = """\
# e2e role bootstrap: the installed node uses dgxie's APT mirror and pulls through dgxie's /v2/
apt-get -o Acquire::Retries=3 update
echo "dgxie-e2e: apt-get update from dgxie ok" > /dev/console
ctr image pull --hosts-dir /etc/containerd/certs.d --platform linux/amd64 {{ var("image_ref") }}
echo "dgxie-e2e: pulled e2e/hello:1.0 through dgxie" > /dev/console
"""


sh = vmnet.sh


def in_ns(*cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return vmnet.in_ns(NS, *cmd, check=check, timeout=timeout)


def dgxie(config: Path, *args: str, timeout: float = 3600) -> str:
    r = subprocess.run([sys.executable, "-m", "dgxie", "--config", str(config), *args], capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, f"dgxie {' '.join(args)}: {r.stderr[-3000:]}"
    return r.stdout


@dataclass(frozen=True)
class Builder:
    config: Path
    database: Path
    data_dir: Path
    mirror: dict[str, Any]


def prepare_builder() -> Builder:
    """Mirror, image and agent, built once and cached (`$DGXIE_TEST_CACHE/deploy-builder`)."""
    mirror = sync_debian_mirror()
    base = cache_dir() / "deploy-builder"
    data = base / "data"
    data.mkdir(parents=True, exist_ok=True)
    if not (data / "mirrors" / "apt" / mirror.name).exists():
        mirror.link_into(data)
    cfg = base / "dgxie.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": f"sqlite:///{base / 'dgxie.db'}", "data_dir": str(data),
                                   "public_url": f"http://{SRV}:{PORT}", "mirrors": [mirror.config]}))
    dgxie(cfg, "db", "upgrade")
    dgxie(cfg, "image", "build", IMAGE, "--mirror", mirror.name, "--suite", mirror.suite)
    dgxie(cfg, "agent", "build", "--mirror", mirror.name, "--suite", mirror.suite)
    return Builder(cfg, base / "dgxie.db", data, mirror.config)


@dataclass
class Server:
    work: Path
    config: Path
    token: str
    pcap: Path
    image_ref: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        cmd = ["curl", "-sS", "-m", "60", "-X", method, "-H", f"Authorization: Bearer {self.token}",
               "-w", "\n%{http_code}"]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
        out = in_ns(*cmd, f"http://{SRV}:{PORT}{path}").stdout
        text, _, code = out.rpartition("\n")
        assert code.startswith("2"), f"{method} {path}: HTTP {code} {text}"
        return json.loads(text)

    def node(self, ref: str) -> dict[str, Any] | None:
        r = subprocess.run([sys.executable, "-m", "dgxie", "--config", str(self.config), "node", "show", ref,
                            "--json", "--events"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            return None
        node: dict[str, Any] = json.loads(r.stdout)
        return node

    def strangers(self, mac: str) -> list[str]:
        """Every frame from `mac` addressed to anything but dgxie, broadcast or link-local."""
        out = sh("tcpdump", "-nn", "-e", "-r", str(self.pcap), "ether", "src", mac, check=False).stdout
        bad = []
        for line in out.splitlines():
            m = re.search(r"\b(IP6?) (\S+) > (\S+?):", line)
            if not m:
                continue
            dst = m.group(3) if m.group(1) == "IP6" else ".".join(m.group(3).split(".")[:4])
            try:
                addr = ipaddress.ip_address(dst.rsplit(".", 1)[0] if m.group(1) == "IP6" and dst.count(".") == 1
                                            else dst)
            except ValueError:
                continue
            ok = str(addr) in (SRV, "255.255.255.255", "10.204.0.255", "fd04::1") or addr.is_link_local \
                or (addr.is_multicast and (addr.version == 6 or str(addr).startswith("224.0.0.")))
            if not ok:
                bad.append(line)
        return bad


def _netns() -> None:
    vmnet.bridge_ns(NS, BR, f"{SRV}/24", "fd04::1/64", [f"dptap{i}" for i in range(TAPS)])


def _config(built: Builder, work: Path, registry: str) -> dict[str, Any]:
    rule = {"disk": {"select": "smallest"}}
    return {
        "database_url": f"sqlite:///{work / 'dgxie.db'}", "data_dir": str(built.data_dir),
        "public_url": f"http://{SRV}:{PORT}", "api": {"listen": f"{SRV}:{PORT}"},
        "dhcp": {"enabled": True, "interfaces": [BR], "discovery": True,
                 "subnets": [{"cidr": "10.204.0.0/24", "pool": "10.204.0.100-10.204.0.199", "routers": [SRV]}]},
        "tftp": {"enabled": True, "listen": f"{SRV}:69"},
        "install": {"progress_interval_seconds": 0},
        "mirrors": [built.mirror, {"name": "e2e-oci", "kind": "oci", "registry": f"http://{registry}",
                                   "repositories": ["e2e/hello"], "platforms": ["linux/amd64"]}],
        "profiles": {
            "deploy": {"image": IMAGE, "template": "image/deploy", "role": "e2e-worker",
                       "vars": {"apt_mirror": built.mirror["name"], "apt_suite": built.mirror["suites"][0],
                                "image_ref": f"{registry}/e2e/hello:1.0", **rule}},
            "deploy-missing-disk": {"image": IMAGE, "template": "image/deploy", "role": "e2e-worker",
                                    "vars": {"disk": {"serial": "NOPE"}}},
            "deploy-corrupt": {"image": CORRUPT, "template": "image/deploy", "role": "e2e-worker"},
            "deploy-raid1": {"image": IMAGE, "template": "image/deploy", "role": "e2e-worker",
                             "vars": {"apt_mirror": built.mirror["name"], "apt_suite": built.mirror["suites"][0],
                                      "image_ref": f"{registry}/e2e/hello:1.0", "disk": {"layout": "raid1"}}},
        },
        "roles": {"e2e-worker": {"groups": ["kube_node"], "bootstrap": "cloud-init",
                                 "script": "bootstrap/e2e-worker.sh.j2"}},
        "handoff": {"templates_dir": str(work / "templates")},
        "site": {"name": "e2e", "domain": "e2e.test"},
    }


def _copy_database(src: Path, dest: Path) -> None:
    """A consistent copy of the builder's SQLite database, its write-ahead log included (SQLite's
    backup API; copying the file alone misses what is still in `-wal`)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(src)) as s, contextlib.closing(sqlite3.connect(dest)) as d:
        s.backup(d)
    dest.chmod(0o600)


def _corrupt_copy(database: Path) -> None:
    """Register CORRUPT: IMAGE's row with the rootfs sha256 it promises flipped (what a node then
    streams no longer matches what dgxie said it would be)."""
    import sqlite3

    db = sqlite3.connect(database)
    try:
        row = db.execute("SELECT os, arch, kernel, initrd, cmdline, files FROM images WHERE name = ?", (IMAGE,)).fetchone()
        files = json.loads(row[5])
        sha = files["rootfs"]["sha256"]
        files["rootfs"]["sha256"] = ("0" if sha[0] != "0" else "1") + sha[1:]
        now = "2026-01-01 00:00:00.000000"
        db.execute("INSERT INTO images (name, os, arch, kernel, initrd, cmdline, files, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (CORRUPT, *row[:5], json.dumps(files), now, now))
        db.commit()
    finally:
        db.close()


@contextmanager
def serve(built: Builder, work: Path) -> Iterator[Server]:
    _netns()
    procs: list[subprocess.Popen[bytes]] = []
    logs = {n: (work / f"{n}.log").open("wb") for n in ("dgxie", "ra", "tcpdump")}
    try:
        (work / "registry").mkdir()
        with docker_registry(work / "registry", None) as reg:
            layout = Layout(work / "layout")
            add_image(layout, "1.0", "2026-11-01T00:00:00Z")
            layout.save()
            push(layout.root, "1.0", reg, repo="e2e/hello")
            _copy_database(built.database, work / "dgxie.db")
            _corrupt_copy(work / "dgxie.db")
            (work / "templates" / "bootstrap").mkdir(parents=True)
            (work / "templates" / "bootstrap" / "e2e-worker.sh.j2").write_text(BOOTSTRAP)
            cfg = work / "dgxie.yaml"
            cfg.write_text(yaml.safe_dump(_config(built, work, reg.host)))
            dgxie(cfg, "db", "upgrade")
            dgxie(cfg, "mirror", "sync", "e2e-oci")
        token = dgxie(cfg, "token", "create", "--role", "operator", "--name", "e2e").strip().split()[-1]
        pcap = work / "bridge.pcap"
        procs.append(subprocess.Popen(["ip", "netns", "exec", NS, "tcpdump", "-i", BR, "-U", "-w", str(pcap)],
                                      stdout=logs["tcpdump"], stderr=subprocess.STDOUT))
        procs.append(subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, "-m", "dgxie", "--config", str(cfg),
                                       "serve"], stdout=logs["dgxie"], stderr=subprocess.STDOUT))
        if shutil.which("dnsmasq"):  # RA only: stops iPXE's IPv6 wait (harness gotcha 1); not a DHCP server
            procs.append(subprocess.Popen(["ip", "netns", "exec", NS, "dnsmasq", "--keep-in-foreground", "--port=0",
                                           "--user=root", f"--interface={BR}", "--bind-interfaces", "--enable-ra",
                                           "--dhcp-range=fd04::,ra-only,64,10m", "--pid-file=",
                                           f"--log-facility={work}/ra-dnsmasq.log"],
                                          stdout=logs["ra"], stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 90
        while in_ns("curl", "-sf", "-m", "2", f"http://{SRV}:{PORT}/healthz", check=False).returncode != 0:
            assert time.monotonic() < deadline and procs[1].poll() is None, \
                (work / "dgxie.log").read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        yield Server(work, cfg, token, pcap, f"{reg.host}/e2e/hello:1.0", procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs.values():
            f.close()
        sh("pkill", "-f", f"serial file:{work}/", check=False)  # no VM outlives its test
        sh("ip", "netns", "del", NS, check=False)


class VM:
    def __init__(self, server: Server, fw: str, index: int | None = None, disks: int = 1) -> None:
        self.server, self.fw = server, fw
        self.index = index if index is not None else (0 if fw == "bios" else 1)
        self.mac = f"52:54:00:04:00:{self.index + 1:02x}"
        self.smbios_serial = f"E2E-VM-{self.index}"
        self.disk_serial = f"E2E-DISK-{self.index}"
        self.disks = [server.work / f"vm{self.index}-{i}.raw" for i in range(disks)]
        self.disk = self.disks[0]
        self.serial_log = server.work / f"vm{self.index}.serial.log"
        self.started = 0.0
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        nic = f"virtio-net-pci,netdev=n0,mac={self.mac},bootindex=1"
        fw: list[str] = []
        if self.fw == "uefi":
            nic += ",romfile="  # OVMF's own PXE -> TFTP ipxe.efi
            vars_copy = self.server.work / f"vm{self.index}.vars.fd"
            shutil.copy(OVMF_VARS, vars_copy)
            fw = ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                  "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]
        return ["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2",
                "-nographic", "-monitor", "none", "-serial", f"file:{self.serial_log}", *fw,
                "-smbios", f"type=1,manufacturer=dgxie-e2e,product=TCG-VM,serial={self.smbios_serial}",
                "-netdev", f"tap,id=n0,ifname=dptap{self.index},script=no,downscript=no", "-device", nic,
                *[a for i, d in enumerate(self.disks) for a in (
                    "-drive", f"file={d},if=none,id=d{i},format=raw",
                    "-device", f"virtio-blk-pci,drive=d{i},serial={self.disk_serial}{'' if i == 0 else f'-{i}'}"
                               f",bootindex={2 + i}")]]

    @contextmanager
    def running(self, *, fresh: bool = True) -> Iterator[VM]:
        """Power on (with empty disks when `fresh`); power off when the block ends."""
        for disk in self.disks if fresh else []:
            with disk.open("wb") as f:
                f.truncate(DISK_BYTES)
        self.started = time.time()
        err = (self.server.work / f"vm{self.index}.qemu.log").open("wb")
        self.proc = subprocess.Popen(["ip", "netns", "exec", NS, *self.command()], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=err)
        try:
            yield self
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            err.close()

    def link(self, *, up: bool) -> None:
        """Take the VM's link to dgxie down or up (its tap on the bridge)."""
        in_ns("ip", "link", "set", f"dptap{self.index}", "up" if up else "down")

    def disk_head(self, i: int = 0) -> bytes:
        with self.disks[i].open("rb") as f:
            return f.read(1 << 20)

    def serial(self) -> str:
        return self.serial_log.read_text(errors="replace") if self.serial_log.exists() else ""

    def wait_node(self, pred: Callable[[dict[str, Any]], Any], timeout: float, what: str,
                  ref: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        node: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            node = self.server.node(ref or self.mac)
            if node is not None and pred(node):
                return node
            assert self.proc is not None and self.proc.poll() is None, "QEMU exited\n" + self.serial()[-3000:]
            time.sleep(3)
        dlog = (self.server.work / "dgxie.log").read_text(errors="replace")[-2500:]
        raise AssertionError(f"{self.fw}: not {what} after {timeout:.0f}s; events: "
                             f"{tail_events(node) if node else 'no node'}\n--- serial\n{self.serial()[-4000:]}"
                             f"\n--- dgxie\n{dlog}")


def tail_events(node: dict[str, Any] | None, n: int = 12) -> str:
    if not node:
        return "no node"
    return "\n".join(f"{e['time']} {e['kind']} {e.get('to_state') or ''} {e['reason']}" for e in node["events"][-n:])


def record_phases(server: Server, fw: str, node: dict[str, Any], vm: VM) -> dict[str, float]:
    """Seconds per phase from the node's events (and the VM's start); saved for bench/RESULTS.md."""
    from datetime import datetime

    def at(kind: str, contains: str = "") -> float:
        for e in node["events"]:
            if e["kind"] == kind and contains in e["reason"]:
                return datetime.fromisoformat(e["time"]).timestamp()
        raise AssertionError(f"no {kind} event {contains!r}")

    t = {"power-on": vm.started, "agent-up": at("agent.hello"), "commissioned": at("agent.facts"),
         "deploy-start": at("install.start"), "image-start": at("agent.progress", "image: writing"),
         "image-done": at("agent.progress", "written and verified"), "installed": at("install.finished"),
         "first-boot": at("install.progress", "cloud-init"), "ready": at("bootstrap.done")}
    names = list(t)
    phases = {f"{a} -> {b}": round(t[b] - t[a], 1) for a, b in itertools.pairwise(names)}
    phases["total (power-on -> ready)"] = round(t["ready"] - t["power-on"], 1)
    out = Path(os.environ.get("DGXIE_DEPLOY_PHASES", str(server.work / f"phases-{fw}.json")))
    out.write_text(json.dumps(phases, indent=2))
    print(f"\n{fw} deploy phases (s): {json.dumps(phases)}")
    return phases
