"""The agent's image write against `dd` of the same image to the same virtual disk, in one VM boot.

    sudo .venv/bin/python bench/deploy/write_speed.py [--runs 2]

Boots the deploy agent's own kernel and initramfs (the builder state of the deploy e2e test:
tests/support/deploy_vm.prepare_builder, cached) in QEMU (TCG; the e2e VM's shape: q35, 2 vCPUs,
2 GiB, a 6 GiB raw virtio-blk disk, QEMU user networking), with a second cpio archive appended
whose /init runs, on the same disk and the same HTTP server (Python's http.server on the host,
serving the image store's blob):

  dd        curl URL | dd of=/dev/vda bs=4M conv=fsync          the compressed tarball, raw
  unpacked  curl URL | zstd -dc | dd of=/dev/vda bs=4M conv=fsync   decompressed, still raw
  agent     the agent's own partition + stream_image (curl | tee >sha256 | zstd -dc | tar -x on
            ext4) + sync, sourced from /usr/bin/dgxie-agent (DGXIE_AGENT_LIB=1)

Each is timed by the guest's /proc/uptime; the page cache is dropped before each. Prints one JSON
line per run and the ratios dd/agent and unpacked/agent (1.0 = as fast as dd).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import io
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dgxie.imaging import cpio
from tests.support import deploy_vm as dv

INIT = r"""#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp /mnt; mount -t tmpfs tmpfs /run
for pass in 1 2; do find /sys/devices -name modalias -exec cat {} + 2>/dev/null | sort -u | xargs modprobe -abq; done
for m in crc32c_intel crc32c_generic ext4 vfat nls_cp437 nls_iso8859_1; do modprobe -q $m; done
for w in $(cat /proc/cmdline); do case $w in bench.url=*) BURL=${w#*=};; bench.sha=*) SHA=${w#*=};; esac; done
ip link set lo up; ip link set eth0 up
udhcpc -i eth0 -s /etc/dgxie-udhcpc.script -q -n -t 10 >/dev/null 2>&1
up() { cut -d' ' -f1 /proc/uptime; }
clear() { sync; echo 3 > /proc/sys/vm/drop_caches; }
clear; a=$(up); curl -fsS "$BURL" | dd of=/dev/vda bs=4M conv=fsync 2>/dev/null; b=$(up)
echo "BENCH dd $a $b"
clear; a=$(up); curl -fsS "$BURL" | zstd -dcq | dd of=/dev/vda bs=4M conv=fsync 2>/dev/null; b=$(up)
echo "BENCH unpacked $a $b"
DGXIE_AGENT_LIB=1 . /usr/bin/dgxie-agent
PLAN_DISKS=/dev/vda; PLAN_LAYOUT=direct; PLAN_IMAGE_URL=$BURL; PLAN_IMAGE_SHA256=$SHA
partition >/dev/null 2>&1 || echo "BENCH partition failed"
clear; a=$(up); stream_image >/tmp/out 2>&1; rc=$?; sync; b=$(up)
echo "BENCH agent $a $b rc=$rc $(tail -n 1 /tmp/out)"
[ $rc -eq 0 ] || { echo "--- stream_image output"; tail -n 20 /tmp/out; }
poweroff -f
"""


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


def run_once(kernel: Path, initrd: Path, sha: str, port: int, work: Path) -> dict[str, float]:
    disk = work / "disk.raw"
    with disk.open("wb") as f:
        f.truncate(dv.DISK_BYTES)
    serial = work / "serial.log"
    cmd = ["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2",
           "-nographic", "-monitor", "none", "-serial", f"file:{serial}", "-no-reboot",
           "-kernel", str(kernel), "-initrd", str(initrd),
           "-append", f"console=ttyS0 quiet bench.url=http://10.0.2.2:{port}/rootfs.tar.zst bench.sha={sha}",
           "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
           "-drive", f"file={disk},if=none,id=d0,format=raw", "-device", "virtio-blk-pci,drive=d0"]
    subprocess.run(cmd, timeout=1800, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    out: dict[str, float] = {}
    for m in re.finditer(r"BENCH (\w+) ([\d.]+) ([\d.]+)(.*)", serial.read_text(errors="replace")):
        out[m[1]] = round(float(m[3]) - float(m[2]), 1)
        if m[1] == "agent" and "rc=0" not in m[4]:
            raise SystemExit(f"the agent's write failed: {m[4].strip()}\n" + serial.read_text(errors="replace")[-2500:])
    if set(out) != {"dd", "unpacked", "agent"}:
        raise SystemExit("the bench VM did not finish:\n" + serial.read_text(errors="replace")[-3000:])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    built = dv.prepare_builder()
    images = json.loads(subprocess.run([sys.executable, "-m", "dgxie", "--config", str(built.config), "image",
                                        "list", "--json"], capture_output=True, text=True, check=True).stdout)
    by_name = {i["name"]: i for i in images}
    store = built.data_dir / "images" / "blobs" / "sha256"

    def blob(sha: str) -> Path:
        return store / sha[:2] / sha

    agent, image = by_name["agent"]["files"], by_name[dv.IMAGE]["files"]
    rootfs = image["rootfs"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "www").mkdir()
        (work / "www" / "rootfs.tar.zst").symlink_to(blob(rootfs["sha256"]))
        extra = io.BytesIO()
        cpio.write([cpio.file("init", INIT.encode(), 0o755)], extra)
        initrd = work / "initrd.img"
        base = blob(agent["initrd.img"]["sha256"]).read_bytes()  # zero padding between archives: skipped
        initrd.write_bytes(base + bytes(-len(base) % 512) + extra.getvalue())
        srv, port = serve(work / "www")
        try:
            print(f"load average before: {Path('/proc/loadavg').read_text().split()[:3]}", file=sys.stderr)
            for run in range(args.runs):
                t0 = time.monotonic()
                r = run_once(blob(agent["vmlinuz"]["sha256"]), initrd, rootfs["sha256"], port, work)
                r |= {"run": run + 1, "image_bytes": rootfs["size"], "dd/agent": round(r["dd"] / r["agent"], 2),
                      "unpacked/agent": round(r["unpacked"] / r["agent"], 2),
                      "vm_seconds": round(time.monotonic() - t0, 1)}
                print(json.dumps(r))
        finally:
            srv.shutdown()


if __name__ == "__main__":
    main()
