"""Power and one-time boot through real peers: sushy-emulator (Redfish, fake driver, basic auth;
its power state lands 1-11 s after a Reset, so tests poll with a bound) and ipmi_sim (IPMI
lanplus, cipher suite 3). Every action, and every failed one, is an event."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from dgxie import db
from dgxie.app import create_app
from dgxie.bmc.base import Endpoint
from dgxie.bmc.redfish import RedfishBmc
from dgxie.nodes import power, service
from tests.support.bmc import INSECURE_HTTP, ipmi_sim, sushy_emulator

SYS_OFF = "/redfish/v1/Systems/11111111-1111-4111-8111-111111111111"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sushy_emulator(tmp_path_factory.mktemp("sushy-emu")) as url:
        yield url


@pytest.fixture(scope="module")
def ipmi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with ipmi_sim(tmp_path_factory.mktemp("ipmisim")) as port:
        yield port


def _power(url: str, system: str) -> str:
    return str(httpx.get(url + system, auth=("admin", "password"), timeout=5).json()["PowerState"])


def _wait(url: str, system: str, want: str, bound: float = 30) -> str:
    deadline = time.monotonic() + bound
    while (state := _power(url, system)) != want and time.monotonic() < deadline:
        time.sleep(0.5)
    return state


def test_redfish_power_and_pxe_through_api(make_ctx: Any, auth: Any, emulator: str) -> None:
    ctx = make_ctx(bmc=INSECURE_HTTP)
    with TestClient(create_app(ctx)) as client:
        r = client.post("/api/v1/nodes", headers=auth("operator"), json={
            "hostname": "emu01", "mac": "00:5c:52:31:3a:01",
            "bmc": {"url": emulator + SYS_OFF, "username": "admin", "password": "password"}})
        assert r.status_code == 201
        assert "password" not in json.dumps(r.json()["bmc"]).replace("password_set", "")
        start = _power(emulator, SYS_OFF)
        target = "off" if start == "On" else "on"
        r = client.post("/api/v1/nodes/emu01/power", json={"action": target}, headers=auth("operator"))
        assert r.status_code == 200, r.text
        assert _wait(emulator, SYS_OFF, target.capitalize()) == target.capitalize()
        r = client.get("/api/v1/nodes/emu01/power", headers=auth("viewer"))
        assert r.json() == {"node": "emu01", "power": target}
        assert client.post("/api/v1/nodes/emu01/power", json={"action": "reboot"},
                           headers=auth("operator")).status_code == 422
        assert client.post("/api/v1/nodes/emu01/power", json={"action": "on"},
                           headers=auth("viewer")).status_code == 403
        r = client.post("/api/v1/nodes/emu01/bootdev", json={"device": "pxe"}, headers=auth("operator"))
        assert r.status_code == 200, r.text
        boot = httpx.get(emulator + SYS_OFF, auth=("admin", "password")).json()["Boot"]
        assert boot["BootSourceOverrideTarget"] == "Pxe"
        kinds = [e["kind"] for e in client.get("/api/v1/nodes/emu01/events", headers=auth("viewer")).json()]
        assert kinds[-2:] == ["node.power", "node.bootdev"]


def test_redfish_pxe_once_and_cycle_and_wrong_password(make_ctx: Any, emulator: str) -> None:
    ctx = make_ctx(bmc=INSECURE_HTTP)
    from dgxie.nodes.schemas import NodeCreate

    with db.session_scope(ctx.sessions) as s:
        for host, mac, pw in (("emu02", "00:5c:52:31:3a:02", "password"), ("emu03", "00:5c:52:31:3a:03", "wrong")):
            service.create_node(s, ctx.site, NodeCreate.model_validate({
                "hostname": host, "mac": mac, "bmc": {"url": emulator, "username": "admin", "password": pw}}),
                actor="test")
    with db.session_scope(ctx.sessions) as s:
        out = power.pxe_once_and_cycle(s, ctx.site, service.get_node(s, "emu02"), "test")
        assert out.boot == "pxe"
    rb = RedfishBmc(Endpoint(emulator, "admin", "password"))
    assert rb.boot_override()["BootSourceOverrideTarget"] == "Pxe"
    assert rb.wait_power("on", 30)  # a cycle leaves the machine on (an off one is started)
    with pytest.raises(Exception) as exc, db.session_scope(ctx.sessions) as s:
        power.power(s, ctx.site, service.get_node(s, "emu03"), "on", actor="test")
    assert getattr(exc.value, "status", None) == 503 and "BMC auth" in str(exc.value)
    assert "wrong" not in str(exc.value)
    with db.session_scope(ctx.sessions) as s:
        from dgxie.events import list_events
        evs = list_events(s, node=service.get_node(s, "emu03"))
        assert evs[-1].kind == "node.power.failed" and evs[-1].data["error_kind"] == "auth"


def test_ipmi_power_and_pxe_through_cli(cli: Any, ipmi: int, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("password\n")
    url = f"ipmi://127.0.0.1:{ipmi}"
    assert cli("node", "add", "ipmi01", "--mac", "00:5c:52:31:3b:01", "--bmc", url, "--bmc-user", "admin",
               "--bmc-password-file", str(pw)).code == 0
    for action, want in (("on", "on"), ("off", "off"), ("cycle", "on"), ("off", "off")):
        r = cli("node", "power", "ipmi01", action, "--json")
        assert r.code == 0, r.err
        assert json.loads(r.out)["power"] == want, action
    assert json.loads(cli("node", "power", "ipmi01", "status", "--json").out)["power"] == "off"
    r = cli("node", "bootdev", "ipmi01", "pxe")
    assert r.code == 0, r.err
    got = subprocess.run(["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(ipmi), "-U", "admin",
                          "-P", "password", "chassis", "bootparam", "get", "5"], capture_output=True, text=True)
    assert "Force PXE" in got.stdout and "only next boot" in got.stdout
    assert cli("node", "power", "ipmi01", "dance").code == 1

    pw.write_text("nope\n")
    assert cli("node", "set", "ipmi01", "--bmc-password-file", str(pw)).code == 0
    r = cli("node", "power", "ipmi01", "on")
    assert r.code == 1 and "BMC auth" in r.err and "nope" not in r.err
    events = json.loads(cli("node", "show", "ipmi01", "--json", "--events").out)["events"]
    assert [e["kind"] for e in events].count("node.power") == 4
    assert events[-1]["kind"] == "node.power.failed"
    assert cli("node", "add", "nobmc", "--mac", "00:5c:52:31:3b:02").code == 0
    r = cli("node", "power", "nobmc", "on")
    assert r.code == 1 and "has no BMC" in r.err


def test_reprovision_sets_pxe_once_and_cycles(cli: Any, config_file: Any, emulator: str, tmp_path: Path) -> None:
    config_file(bmc=INSECURE_HTTP)
    pw = tmp_path / "pw"
    pw.write_text("password\n")
    system = "/redfish/v1/Systems/22222222-2222-4222-8222-222222222222"
    assert cli("node", "add", "emu04", "--mac", "00:5c:52:31:3a:04", "--bmc", emulator + system, "--bmc-user",
               "admin", "--bmc-password-file", str(pw)).code == 0
    assert cli("node", "add", "plain", "--mac", "00:5c:52:31:3a:05").code == 0
    r = cli("node", "reprovision", "emu04")
    assert r.code == 0, r.err
    boot = httpx.get(emulator + system, auth=("admin", "password")).json()["Boot"]
    assert boot["BootSourceOverrideTarget"] == "Pxe"
    kinds = [e["kind"] for e in json.loads(cli("node", "show", "emu04", "--json", "--events").out)["events"]]
    assert "node.pxe_cycle" in kinds
    assert cli("node", "reprovision", "plain").code == 0  # no BMC: nothing to do, no error
    pw.write_text("wrong\n")
    assert cli("node", "set", "emu04", "--bmc-password-file", str(pw)).code == 0
    r = cli("node", "reprovision", "emu04")  # a BMC failure is said, and does not undo the reprovision
    assert r.code == 1 and r.err.startswith(f"dgxie: error: emu04: PXE once failed: BMC auth: {emulator}")
    assert r.err.endswith("; emu04 stays enrolled: it reinstalls at its next network boot "
                          "(boot it from the network by hand)\n") and r.err.count("\n") == 1
    shown = json.loads(cli("node", "show", "emu04", "--json", "--events").out)
    assert shown["state"] == "enrolled" and shown["events"][-1]["kind"] == "node.pxe_cycle.failed"
    assert [e["kind"] for e in shown["events"]][-2:] == ["reprovision", "node.pxe_cycle.failed"]


def test_a_bmc_with_one_system_is_driven(tmp_path: Path) -> None:
    """Most servers' BMCs list one ComputerSystem; the driver used to fail on them (it compared
    the members with an empty list of their documents), found by the boot-storm simulator."""
    with sushy_emulator(tmp_path, single=True) as emulator:
        rb = RedfishBmc(Endpoint(emulator, "admin", "password"))
        assert rb.power_state() in ("on", "off")
        rb.power("on")
        assert rb.wait_power("on", 30)
