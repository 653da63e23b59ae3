"""Power and one-time PXE boot of a DGX H100 through its real Redfish capture.

Two peers serve the capture: sushy-static (every POST, the session login included, answers 204 with
no body and no token, and changes nothing: so dgxie must use basic auth, and a power action is
accepted but never shows in the state read back), and a token-granting peer of our own
(tests/support/session_bmc.py: sessions as DSP0266 describes them, basic auth refused, Reset and
Boot PATCH applied). The terminal test runs the real `dgxie` in a subprocess, where Python
warnings would print."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dgxie.app import create_app
from tests.support.bmc import DGX_MOCKUP, INSECURE_HTTP, dgxie_process, free_port, static_log, sushy_static
from tests.support.session_bmc import SESSIONS, session_bmc

SYSTEM = "/redfish/v1/Systems/DGX"


@pytest.fixture
def dgx(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A sushy-static DGX per test (a BMC's login is pooled per process and URL, so each test
    sees its own login in the peer's log)."""
    with sushy_static(DGX_MOCKUP, tmp_path) as url:
        yield url, static_log(url, tmp_path)


def _add(cli: Any, tmp_path: Path, host: str, url: str, password: str = "password") -> None:
    pw = tmp_path / f"pw-{host}"
    pw.write_text(password + "\n")
    mac = "aa:00:00:00:0d:%02x" % (sum(host.encode()) % 256)
    r = cli("node", "add", host, "--mac", mac, "--bmc", url, "--bmc-user", "admin", "--bmc-password-file", str(pw))
    assert r.code == 0, r.err


def _kinds(cli: Any, host: str) -> list[str]:
    return [e["kind"] for e in json.loads(cli("node", "show", host, "--json", "--events").out)["events"]]


def test_power_and_pxe_against_the_dgx_capture(cli: Any, config_file: Any, dgx: tuple[str, Path],
                                               tmp_path: Path) -> None:
    url, log = dgx
    config_file(bmc=INSECURE_HTTP)
    _add(cli, tmp_path, "dgx01", url)
    r = cli("node", "power", "dgx01", "status")
    assert (r.code, r.out, r.err) == (0, "dgx01: power on\n", "")
    r = cli("node", "power", "dgx01", "on")
    assert (r.code, r.out) == (0, "dgx01: power on done; the BMC reports on\n"), r.err
    r = cli("node", "power", "dgx01", "off")  # accepted (204), but sushy-static never changes PowerState
    assert (r.code, r.out) == (0, "dgx01: power off requested; the BMC still reports on "
                                  "(it may take a while: dgxie node power dgx01 status)\n"), r.err
    r = cli("node", "power", "dgx01", "cycle", "--json")
    assert r.code == 0 and json.loads(r.out) == {"node": "dgx01", "action": "cycle", "power": "on"}, r.err
    r = cli("node", "bootdev", "dgx01", "pxe")
    assert r.code == 0 and "dgx01: next boot from pxe" in r.err
    assert _kinds(cli, "dgx01")[-4:] == ["node.power", "node.power", "node.power", "node.bootdev"]

    text = log.read_text()
    reset = f'"POST {SYSTEM}/Actions/ComputerSystem.Reset HTTP/1.1" 204'
    assert text.count(reset) == 3
    # The DGX allows ForceOff, ForceRestart, GracefulShutdown, On (its ResetActionInfo): no PowerCycle.
    for body in ('{"ResetType": "On"}', '{"ResetType": "ForceOff"}', '{"ResetType": "ForceRestart"}',
                 '{"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}}'):
        assert f"Data: b'{body}'" in text, body
    assert f'"PATCH {SYSTEM} HTTP/1.1" 204' in text and 'If-Match: "1720039110"' in text
    # The login answered 204 without a token: every request after it used basic auth.
    assert f'"POST {SESSIONS} HTTP/1.1" 204' in text
    assert "X-Auth-Token" not in text and "Authorization: Basic YWRtaW46cGFzc3dvcmQ=" in text


def test_power_through_the_api_against_the_dgx_capture(make_ctx: Any, auth: Any, dgx: tuple[str, Path]) -> None:
    ctx = make_ctx(bmc=INSECURE_HTTP)
    with TestClient(create_app(ctx)) as client:
        r = client.post("/api/v1/nodes", headers=auth("operator"), json={
            "hostname": "dgx02", "mac": "aa:00:00:00:0e:01",
            "bmc": {"url": dgx[0], "username": "admin", "password": "password"}})
        assert r.status_code == 201, r.text
        r = client.get("/api/v1/nodes/dgx02/power", headers=auth("viewer"))
        assert (r.status_code, r.json()) == (200, {"node": "dgx02", "power": "on"})
        r = client.post("/api/v1/nodes/dgx02/power", json={"action": "cycle"}, headers=auth("operator"))
        assert (r.status_code, r.json()) == (200, {"node": "dgx02", "action": "cycle", "power": "on"})
        r = client.post("/api/v1/nodes/dgx02/bootdev", json={"device": "pxe"}, headers=auth("operator"))
        assert (r.status_code, r.json()) == (200, {"node": "dgx02", "boot": "pxe"})


def test_the_terminal_gets_one_line_and_no_python_warnings(cli: Any, config_file: Any, dgx: tuple[str, Path],
                                                          tmp_path: Path) -> None:
    cfg = config_file(bmc=INSECURE_HTTP | {"retries": 0})
    _add(cli, tmp_path, "dgx03", dgx[0])
    _add(cli, tmp_path, "gone", f"http://127.0.0.1:{free_port()}")  # nothing listens there

    def dgxie(*args: str) -> subprocess.CompletedProcess[str]:
        return dgxie_process(cfg, tmp_path, *args)

    p = dgxie("node", "power", "dgx03", "status")
    assert (p.returncode, p.stdout, p.stderr) == (0, "dgx03: power on\n", "")
    p = dgxie("node", "power", "gone", "status")
    assert p.returncode == 1 and p.stdout == ""
    assert re.fullmatch(r"dgxie: error: gone: BMC unreachable: http://127\.0\.0\.1:\d+: unreachable "
                        r"\(connection refused\)\n", p.stderr), p.stderr


def test_sessions_when_the_bmc_gives_a_token(cli: Any, config_file: Any, tmp_path: Path) -> None:
    config_file(bmc=INSECURE_HTTP)
    with session_bmc() as bmc:
        _add(cli, tmp_path, "tok01", bmc.url)
        r = cli("node", "power", "tok01", "off")
        assert (r.code, r.out) == (0, "tok01: power off done; the BMC reports off\n"), r.err
        logins = [i for i, (m, p, _) in enumerate(bmc.requests) if (m, p) == ("POST", SESSIONS)]
        assert len(logins) == 1
        assert {how for _, _, how in bmc.requests[logins[0] + 1:]} == {"token"}  # basic auth would be refused
        bmc.expire()  # the BMC's SessionTimeout: the next request gets 401, dgxie logs in again
        r = cli("node", "bootdev", "tok01", "pxe")
        assert r.code == 0, r.err
        assert len([1 for m, p, _ in bmc.requests if (m, p) == ("POST", SESSIONS)]) == 2
        boot = bmc.systems[SYSTEM]["Boot"]
        assert (boot["BootSourceOverrideTarget"], boot["BootSourceOverrideEnabled"]) == ("Pxe", "Once")
        r = cli("node", "power", "tok01", "cycle")  # an off machine is started
        assert (r.code, r.out) == (0, "tok01: power cycle done; the BMC reports on\n"), r.err

        _add(cli, tmp_path, "tok02", bmc.url, password="wrong")
        r = cli("node", "power", "tok02", "status")
        assert r.code == 1 and r.err == (f"dgxie: error: tok02: BMC auth: {bmc.url}: credentials rejected "
                                         "(session login HTTP 401, basic auth HTTP 401)\n")
        assert "wrong" not in r.err


def test_reprovision_reports_its_power_cycle(make_ctx: Any, auth: Any, cli: Any, config_file: Any,
                                             tmp_path: Path) -> None:
    config_file(bmc=INSECURE_HTTP)
    with session_bmc() as good, session_bmc(reset_status=500) as broken:
        _add(cli, tmp_path, "rp01", good.url)
        _add(cli, tmp_path, "rp02", broken.url)
        _add(cli, tmp_path, "rp03", good.url, password="wrong")
        r = cli("node", "reprovision", "rp01")
        assert r.code == 0 and r.err == ("rp01: enrolled; PXE set for the next boot and power cycled; "
                                         "it reinstalls at its next network boot\n"), r.err
        r = cli("node", "reprovision", "rp02")
        assert r.code == 1
        assert r.err == (f"dgxie: error: rp02: power cycle failed: BMC failed: {broken.url}: Reset ForceRestart: "
                         "HTTP 500: Reset failed (injected); rp02 stays enrolled: it reinstalls at its next network "
                         "boot (boot it from the network by hand)\n")
        assert _kinds(cli, "rp02")[-2:] == ["reprovision", "node.pxe_cycle.failed"]
        assert broken.systems[SYSTEM]["Boot"]["BootSourceOverrideTarget"] == "Pxe"  # the first step was done

        ctx = make_ctx(bmc=INSECURE_HTTP)
        with TestClient(create_app(ctx)) as client:
            r = client.post("/api/v1/nodes/rp01/reprovision", headers=auth("operator"))
            assert r.status_code == 200 and r.json()["state"] == "enrolled"
            assert r.json()["power_cycle"] == {"node": "rp01", "ok": True, "boot": "pxe", "power": "on",
                                               "error": None, "error_kind": None}
            r = client.post("/api/v1/nodes/rp03/reprovision", headers=auth("operator"))
            assert r.status_code == 200 and r.json()["state"] == "enrolled"
            cycle = r.json()["power_cycle"]
            assert (cycle["ok"], cycle["boot"], cycle["power"], cycle["error_kind"]) == (False, None, None, "auth")
            assert cycle["error"].startswith(f"rp03: PXE once failed: BMC auth: {good.url}: credentials rejected")
            assert client.post("/api/v1/nodes", headers=auth("operator"), json={
                "hostname": "rp04", "mac": "aa:00:00:00:0e:04"}).status_code == 201
            r = client.post("/api/v1/nodes/rp04/reprovision", headers=auth("operator"))
            assert r.status_code == 200 and r.json()["power_cycle"] is None  # no BMC: nothing tried
