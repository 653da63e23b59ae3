"""Real BMC peers on loopback for the bmc/firmware tests: sushy-static, sushy-emulator, ipmi_sim.

Recipes from ../shared/reference/bmc-peers/README.md. Every peer gets a free port picked here and
is killed (by its own pid) in teardown, even when the test fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.net import free_port as free_port  # re-exported for the tests that import it from here
from tests.support.paths import REPO, SHARED

REFERENCE = SHARED / "reference"
DGX_MOCKUP = REFERENCE / "redfish" / "nvidia-dgx-h100" / "redfish" / "v1"
RACK_MOCKUP = REFERENCE / "redfish" / "dmtf-public-rackmount1" / "redfish" / "v1"
PEERS = REFERENCE / "bmc-peers"
BIN = Path(sys.executable).parent
# The sushy-tools peers and the fault injectors speak plain http://, which a site must allow
# explicitly (config `bmc.allow_insecure_http`): give this to `make_ctx(bmc=...)`/`config_file(bmc=...)`.
INSECURE_HTTP = {"allow_insecure_http": True}


def dgxie_process(config: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`dgxie ARGS` as an operator runs it: its own process, so whatever it prints (Python warnings
    included, which pytest would catch in-process) is in `stdout`/`stderr`."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), "DGXIE_CONFIG": str(config),
           "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "dgxie", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120, check=False)


def wait_http(url: str, timeout: float = 30.0, auth: tuple[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2, auth=auth)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


@contextmanager
def _proc(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield p
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def static_log(url: str, tmp: Path) -> Path:
    """The log of the `sushy_static` peer at `url` (it prints each request's headers and body)."""
    return tmp / f"sushy-static-{url.rsplit(':', 1)[1]}.log"


@contextmanager
def sushy_static(mockup: Path, tmp: Path) -> Iterator[str]:
    """sushy-static serving `mockup` read-only: GET from the files, every POST and PATCH answered
    204 with no body (and no effect); its log (`static_log`) is written unbuffered."""
    port = free_port()
    with _proc([str(BIN / "sushy-static"), "-i", "127.0.0.1", "-p", str(port), "-m", str(mockup)],
               tmp / f"sushy-static-{port}.log", env=dict(os.environ, PYTHONUNBUFFERED="1")):
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/redfish/v1")
        yield url


EXTRA_UUID = "33333333-3333-4333-8333-{:012d}"


def extra_system(i: int) -> str:
    """The path of `sushy_emulator(extra=N)`'s i-th extra system (1-based)."""
    return f"/redfish/v1/Systems/{EXTRA_UUID.format(i)}"


@contextmanager
def sushy_emulator(tmp: Path, user: str = "admin", password: str = "password", extra: int = 0,
                   single: bool = False) -> Iterator[str]:
    """sushy-emulator, fake driver, basic auth (htpasswd -B); two systems (one Off, one On), and
    `extra` more, all Off, at `extra_system(i)` for i in 1..extra; `single`: the first one only
    (what most servers' BMCs show)."""
    d = tmp / "sushy-emu"
    (d / "state").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = (PEERS / "sushy-emulator.conf.in").read_text().replace("@DIR@", str(d))
    conf = conf.replace("SUSHY_EMULATOR_LISTEN_PORT = 8000", f"SUSHY_EMULATOR_LISTEN_PORT = {port}")
    conf += "".join(f"SUSHY_EMULATOR_FAKE_SYSTEMS.append({{'uuid': '{EXTRA_UUID.format(i)}', 'name': 'extra-{i}', "
                    f"'power_state': 'Off', 'nics': [{{'mac': '00:5c:52:31:3c:{i:02x}', 'ip': '127.0.0.1'}}]}})\n"
                    for i in range(1, extra + 1))
    if single:
        conf += "SUSHY_EMULATOR_FAKE_SYSTEMS = SUSHY_EMULATOR_FAKE_SYSTEMS[:1]\n"
    (d / "emulator.conf").write_text(conf)
    ht = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True)
    (d / "htpasswd").write_text(ht.stdout)
    with _proc([str(BIN / "sushy-emulator"), "--config", str(d / "emulator.conf")], d / "emulator.log"):
        url = f"http://127.0.0.1:{port}"
        # Ready = the systems driver exists: sushy-tools builds it lazily, unlocked, on the first
        # request that needs it (memoize on `Application.systems`), so two concurrent first requests
        # (a power wave of two) each build one over the same SQLite state file, and one of them can
        # fail with a 500 ("database is locked"). One request here builds it before any test does.
        wait_http(url + "/redfish/v1/Systems", auth=(user, password))
        yield url


@contextmanager
def ipmi_sim(tmp: Path) -> Iterator[int]:
    """ipmi_sim with the chassis hook keeping power/boot in files; yields its UDP port."""
    d = tmp / "ipmisim"
    (d / "state").mkdir(parents=True, exist_ok=True)
    port = free_port(socket.SOCK_DGRAM)
    conf = (PEERS / "ipmi_sim-lan.conf.in").read_text().replace("@DIR@", str(d))
    conf = conf.replace("addr 127.0.0.1 9623", f"addr 127.0.0.1 {port}")
    (d / "lan.conf").write_text(conf)
    shutil.copy(PEERS / "ipmi_sim.emu", d / "ipmi_sim.emu")
    shutil.copy(PEERS / "chassis.sh", d / "chassis.sh")
    os.chmod(d / "chassis.sh", 0o755)
    env = dict(os.environ, IPMI_SIM_STATE=str(d / "state"))
    with _proc(["ipmi_sim", "-c", str(d / "lan.conf"), "-f", str(d / "ipmi_sim.emu"), "-s", str(d / "state"), "-n"],
               d / "ipmi_sim.log", env=env):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = subprocess.run(["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(port),
                                "-U", "admin", "-P", "password", "-N", "1", "-R", "1", "chassis", "power", "status"],
                               capture_output=True, text=True, check=False)
            if r.returncode == 0:
                break
            time.sleep(0.3)
        else:
            raise RuntimeError("ipmi_sim did not answer")
        yield port
