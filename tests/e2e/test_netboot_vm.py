"""Real VMs PXE-boot from `dgxie serve` (DHCP + TFTP + iPXE script + images over HTTP).

A network namespace `nbsrv` holds bridge `nbbr0` (10.203.0.1/24, fd03::1/64) and tap `nbtap0`;
`dgxie serve` runs in it with DHCP on nbbr0, TFTP on :69 and HTTP on :8080. QEMU (TCG) boots
with its NIC on the tap:

- BIOS: SeaBIOS + qemu's iPXE ROM -> DHCP (user class iPXE) -> script URL -> kernel + initrd
  over HTTP from /images/.
- UEFI, `romfile=` (no iPXE ROM): OVMF's own PXE -> DHCP arch 7 -> TFTP ipxe.efi (with OVMF's
  tsize probe + abort) -> iPXE -> DHCP -> script -> HTTP.

The booted initrd (tests/e2e/netboot_payload.sh, cached under $DGXIE_TEST_CACHE or
/var/cache/dgxie-test/netboot) runs udhcpc (a lease from dgxie again) and GETs the
`dgxie.callback=` URL from its cmdline; a small recorder in the namespace logs it (the installer
callback endpoint is another area's). An RA-only dnsmasq stops iPXE's ~13 s IPv6 wait (harness
gotcha 1); it is not a DHCP server (`--port=0`, `ra-only`).

The lifecycle test (issue 4) boots a third node whose image also passes `dgxie.seed={base}`: its
initrd fetches the node's user-data (from its leased address, as dgxie requires) and posts
`finished` to the callback URL in it, and its next PXE boot must get the local-disk script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import vmnet
from tests.support.paths import REPO

ROOT = REPO
NS, BR, TAP = "nbsrv", "nbbr0", "nbtap0"
SRV = "10.203.0.1"
OVMF_CODE, OVMF_VARS = Path("/usr/share/OVMF/OVMF_CODE_4M.fd"), Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
BOOT_TIMEOUT = 240
MACS = {"bios": "52:54:00:03:00:01", "uefi": "52:54:00:03:00:02", "life": "52:54:00:03:00:03"}

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, tap)"),
    pytest.mark.skipif(not shutil.which("qemu-system-x86_64") or not OVMF_CODE.exists()
                       or not Path("/usr/lib/ipxe/ipxe.efi").exists(), reason="qemu/ovmf/ipxe missing"),
    pytest.mark.timeout(900),
]


def in_ns(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return vmnet.in_ns(NS, *cmd, check=check)


@pytest.fixture(scope="module")
def payload() -> Path:
    return vmnet.netboot_payload()


@pytest.fixture(scope="module")
def netns() -> Iterator[None]:
    vmnet.bridge_ns(NS, BR, f"{SRV}/24", "fd03::1/64", [TAP])
    try:
        yield
    finally:
        vmnet.delete_ns(NS)


@pytest.fixture(scope="module")
def server(netns: None, payload: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("nbvm")
    cfg = work / "dgxie.yaml"
    cfg.write_text(yaml.safe_dump({
        "database_url": f"sqlite:///{work}/dgxie.db", "data_dir": str(work / "data"),
        "public_url": f"http://{SRV}:8080", "api": {"listen": f"{SRV}:8080"},
        "dhcp": {"enabled": True, "interfaces": [BR],
                 "subnets": [{"cidr": "10.203.0.0/24", "pool": "10.203.0.100-10.203.0.199", "routers": [SRV]}]},
        "tftp": {"enabled": True, "listen": f"{SRV}:69"},
        "profiles": {"e2e": {"image": "e2e"}, "e2e-life": {"image": "e2e-life"}},
    }))
    dgxie = [sys.executable, "-m", "dgxie", "--config", str(cfg)]
    cmdline = f"console=ttyS0 panic=10 dgxie.callback=http://{SRV}:8081/done?node={{hostname}}"
    for cmd in (["image", "add", "e2e", "--kernel", str(payload / "vmlinuz"), "--initrd", str(payload / "initrd.img"),
                 "--cmdline", cmdline, "--os", "other"],
                ["node", "add", "vm-bios", "--mac", MACS["bios"], "--profile", "e2e"],
                ["node", "add", "vm-uefi", "--mac", MACS["uefi"], "--profile", "e2e"],
                # the lifecycle test's image: the initrd also fetches its user-data and reports finished
                ["image", "add", "e2e-life", "--kernel", str(payload / "vmlinuz"), "--initrd",
                 str(payload / "initrd.img"), "--cmdline", cmdline + " dgxie.seed={base}", "--os", "ubuntu"],
                ["node", "add", "vm-life", "--mac", MACS["life"], "--profile", "e2e-life"]):
        r = subprocess.run(dgxie + cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    callbacks = work / "callbacks.log"
    callbacks.touch()
    logs = {n: (work / f"{n}.log").open("wb") for n in ("dgxie", "recorder", "ra")}
    procs = [
        subprocess.Popen(["ip", "netns", "exec", NS, *dgxie, "serve"], stdout=logs["dgxie"], stderr=subprocess.STDOUT),
        subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, str(ROOT / "tests/e2e/netboot_recorder.py"), SRV,
                          "8081", str(callbacks)], stdout=logs["recorder"], stderr=subprocess.STDOUT),
    ]
    if shutil.which("dnsmasq"):
        procs.append(vmnet.ra_daemon(NS, BR, "fd03::", work / "ra.log", logs["ra"]))
    try:
        deadline = time.monotonic() + 90
        while in_ns("curl", "-sf", "-m", "2", f"http://{SRV}:8080/healthz", check=False).returncode != 0:
            assert time.monotonic() < deadline, (work / "dgxie.log").read_text()[-3000:]
            assert procs[0].poll() is None, (work / "dgxie.log").read_text()[-3000:]
            time.sleep(0.5)
        yield {"work": work, "callbacks": callbacks, "dgxie": dgxie}
    finally:
        vmnet.stop(procs)
        for f in logs.values():
            f.close()


def boot_vm(server: dict[str, Any], fw: str, *, rom: bool, mac: str | None = None,
            serial_done: str | None = None) -> tuple[float, str]:
    """Boot one VM until its callback arrives, or (with `serial_done`) until that text shows on
    its serial console (or BOOT_TIMEOUT); returns (seconds, callback or serial line)."""
    work: Path = server["work"]
    mac = mac or MACS[fw]
    serial = work / f"{fw}-{mac.replace(':', '')}-{time.time():.0f}.serial.log"
    dev = f"virtio-net-pci,netdev=n0,mac={mac},bootindex=1" + ("" if rom else ",romfile=")
    fwargs = ["-boot", "order=n"]
    if fw == "uefi":
        vars_copy = work / "vars.fd"
        shutil.copy(OVMF_VARS, vars_copy)
        fwargs = ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                  "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]
    qemu = ["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "512", "-smp", "1", "-nographic",
            "-monitor", "none", "-serial", f"file:{serial}", "-no-reboot", *fwargs,
            "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no", "-device", dev]
    t0 = time.time()
    vm = subprocess.Popen(["ip", "netns", "exec", NS, *qemu], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=(work / f"{fw}.qemu.log").open("wb"))
    try:
        while time.time() - t0 < BOOT_TIMEOUT:
            if serial_done is not None and serial.exists():
                for line in serial.read_text(errors="replace").splitlines():
                    if serial_done in line:
                        return time.time() - t0, line
            for line in server["callbacks"].read_text().splitlines():
                if f"mac={mac}" in line and float(line.split()[0]) >= t0:
                    return time.time() - t0, line
            if vm.poll() is not None:
                break
            time.sleep(0.5)
    finally:
        vmnet.stop([vm])
    tail = serial.read_text(errors="replace")[-2500:] if serial.exists() else ""
    dlog = (work / "dgxie.log").read_text(errors="replace")[-2500:]
    pytest.fail(f"{fw}: no callback from {mac} after {time.time() - t0:.0f}s\n--- serial\n{tail}\n--- dgxie\n{dlog}")


def _metric(name: str) -> float:
    out = in_ns("curl", "-sf", "-m", "5", f"http://{SRV}:8080/metrics").stdout
    return sum(float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if line.startswith(name))


def test_bios_ipxe_rom_boots_over_http(server: dict[str, Any]) -> None:
    secs, line = boot_vm(server, "bios", rom=True)
    assert "/done?node=vm-bios" in line and " 10.203.0." in line
    print(f"BIOS iPXE ROM -> HTTP: callback after {secs:.1f}s")
    assert _metric('dgxie_boot_decisions_total{action="install"}') >= 1


def test_uefi_native_pxe_tftp_ipxe_http(server: dict[str, Any]) -> None:
    before = _metric('dgxie_tftp_transfers_total{outcome="ok"}')
    secs, line = boot_vm(server, "uefi", rom=False)
    assert "/done?node=vm-uefi" in line
    print(f"UEFI OVMF PXE -> TFTP ipxe.efi -> iPXE -> HTTP: callback after {secs:.1f}s")
    assert _metric('dgxie_tftp_transfers_total{outcome="ok"}') >= before + 1  # ipxe.efi came over TFTP
    assert _metric("dgxie_tftp_bytes_total") >= Path("/usr/lib/ipxe/ipxe.efi").stat().st_size


def _node(server: dict[str, Any], name: str) -> dict[str, Any]:
    import json

    r = subprocess.run([*server["dgxie"], "node", "show", name, "--json", "--events"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    node: dict[str, Any] = json.loads(r.stdout)
    return node


def test_lifecycle_install_then_local_disk(server: dict[str, Any]) -> None:
    """Issue 4's full lifecycle on a real VM: enrolled -> PXE install boot -> the initrd fetches its
    user-data and posts the finished callback in it -> installed -> the next PXE boot of the same VM gets
    the local-disk script, never the installer again."""
    assert _node(server, "vm-life")["state"] == "enrolled"
    secs, line = boot_vm(server, "bios", rom=True, mac=MACS["life"])
    assert "/done?node=vm-life" in line
    deadline = time.monotonic() + 60
    while (node := _node(server, "vm-life"))["state"] != "installed":
        assert time.monotonic() < deadline, node
        time.sleep(1)
    kinds = [e["kind"] for e in node["events"]]
    assert kinds[-2:] == ["install.start", "install.finished"], kinds
    assert all(e["actor"] == "installer" for e in node["events"][-2:])
    print(f"install boot + callbacks after {secs:.1f}s")
    secs, line = boot_vm(server, "bios", rom=True, mac=MACS["life"], serial_done="boots from its local disk")
    assert "vm-life boots from its local disk" in line, line
    assert _node(server, "vm-life")["state"] == "installed"  # no reinstall, no new install events
    print(f"second boot -> local disk script after {secs:.1f}s")
