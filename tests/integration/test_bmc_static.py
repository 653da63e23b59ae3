"""Firmware scan, history and compliance against real sushy-static peers serving the real DGX H100
capture, DMTF's public-rackmount1 (Members@odata.count 2 but 3 members), and a copy of the DGX
capture with one component older, one newer and one PSU gone."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dgxie.app import create_app
from tests.support.bmc import DGX_MOCKUP, INSECURE_HTTP, RACK_MOCKUP, sushy_static
from tests.support.paths import REPO


def _edited_dgx(dst: Path) -> Path:
    root = dst / "redfish" / "v1"
    shutil.copytree(DGX_MOCKUP, root)
    fw = root / "UpdateService" / "FirmwareInventory"
    for cid, version in (("HostBMC_0", "23.05.11"), ("HGX_FW_GPU_SXM_3", "97.00.01.00.01")):
        f = fw / cid / "index.json"
        doc = json.loads(f.read_text())
        doc["Version"] = version
        f.write_text(json.dumps(doc))
    coll = json.loads((fw / "index.json").read_text())
    coll["Members"] = [m for m in coll["Members"] if not m["@odata.id"].endswith("/PSU_5")]
    (fw / "index.json").write_text(json.dumps(coll))
    return root


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("bmc-static")
    with ExitStack() as stack:
        yield {"dgx": stack.enter_context(sushy_static(DGX_MOCKUP, tmp)),
               "rack": stack.enter_context(sushy_static(RACK_MOCKUP, tmp)),
               "old": stack.enter_context(sushy_static(_edited_dgx(tmp / "old"), tmp))}


def _add(cli: Any, tmp_path: Path, host: str, mac: str, url: str) -> None:
    pw = tmp_path / "pw"
    pw.write_text("password\n")
    r = cli("node", "add", host, "--mac", mac, "--bmc", url, "--bmc-user", "admin", "--bmc-password-file", str(pw))
    assert r.code == 0, r.err


def test_scan_and_report_cli(cli: Any, config_file: Any, peers: dict[str, str], tmp_path: Path) -> None:
    config_file(bmc=INSECURE_HTTP)
    _add(cli, tmp_path, "dgx01", "aa:00:00:00:00:01", peers["dgx"])
    _add(cli, tmp_path, "rack01", "aa:00:00:00:00:02", peers["rack"])
    _add(cli, tmp_path, "old01", "aa:00:00:00:00:03", peers["old"])
    assert cli("node", "add", "nobmc", "--mac", "aa:00:00:00:00:04").code == 0
    r = cli("firmware", "scan", "--all", "--json")
    assert r.code == 0, r.err
    res = {x["node"]: x for x in json.loads(r.out)}
    assert set(res) == {"dgx01", "rack01", "old01"}  # --all takes nodes with a BMC
    assert (res["dgx01"]["ok"], res["dgx01"]["components"], res["dgx01"]["model"]) == (True, 66, "DGXH100")
    assert res["rack01"]["components"] == 3
    assert any("Members@odata.count is 2 but 3" in n for n in res["rack01"]["notes"])
    assert any("Manager BMC FirmwareVersion 23.11.20 differs" in n for n in res["dgx01"]["notes"])

    rows = json.loads(cli("firmware", "report", "--format", "json").out)
    assert all({"node", "component", "installed", "required", "status"} <= set(row) for row in rows)
    by = {(x["node"], x["component"]): x for x in rows}
    dgx = [x for x in rows if x["node"] == "dgx01"]
    assert len(dgx) == 66 and {x["status"] for x in dgx} == {"compliant"}
    assert by[("old01", "HostBMC_0")]["status"] == "outdated"
    assert by[("old01", "HostBMC_0")]["installed"] == "23.05.11"
    assert by[("old01", "HostBMC_0")]["required"] == "23.11.21"  # the inventory wins over Manager 23.11.20
    assert by[("old01", "HGX_FW_GPU_SXM_3")]["status"] == "ahead"
    assert by[("old01", "PSU_5")]["status"] == "missing"
    assert by[("rack01", "BMC")]["status"] == "compliant" and by[("rack01", "BMC")]["platform"] == "generic"
    assert by[("nobmc", None)]["status"] == "unknown"

    csv = cli("firmware", "report", "--format", "csv", "--status", "outdated").out.splitlines()
    assert csv[0].startswith("node,component,installed,required,status") and len(csv) == 2
    assert "old01,HostBMC_0,23.05.11,23.11.21,outdated" in csv[1]
    assert "HostBMC_0" in cli("firmware", "report", "--problems").out
    gpus = json.loads(cli("firmware", "report", "--format", "json", "--node", "dgx01",
                          "--component", "HGX_FW_GPU_SXM_*").out)
    assert [x["component"] for x in gpus] == [f"HGX_FW_GPU_SXM_{i}" for i in range(1, 9)]
    exact = json.loads(cli("firmware", "report", "--format", "json", "--component", "PSU_1").out)
    assert sorted(x["node"] for x in exact) == ["dgx01", "old01"]
    bad = cli("firmware", "report", "--status", "broken")
    assert bad.code == 1 and "status: must be one of" in bad.err

    facts = json.loads(cli("node", "show", "dgx01", "--json").out)["facts"]["hardware"]
    assert (facts["model"], facts["gpus"], facts["sockets"], facts["memory_mib"]) == ("DGXH100", 8, 2, 2097152)
    events = json.loads(cli("node", "show", "dgx01", "--json", "--events").out)["events"]
    assert any(e["kind"] == "firmware.scan" for e in events)


def test_changes_since(cli: Any, config_file: Any, peers: dict[str, str], tmp_path: Path) -> None:
    config_file(bmc=INSECURE_HTTP)
    _add(cli, tmp_path, "dgx02", "aa:00:00:00:01:01", peers["dgx"])
    assert cli("firmware", "scan", "dgx02").code == 0
    assert json.loads(cli("firmware", "changes", "--since", "1h", "--json").out) == []
    assert cli("node", "set", "dgx02", "--bmc", peers["old"]).code == 0  # the "same" BMC, after changes
    r = cli("firmware", "scan", "dgx02")
    assert r.code == 0, r.err
    got = {c["component"]: c for c in json.loads(cli("firmware", "changes", "--since", "7d", "--json").out)}
    assert set(got) == {"HostBMC_0", "HGX_FW_GPU_SXM_3", "PSU_5"}
    assert (got["HostBMC_0"]["before"], got["HostBMC_0"]["after"]) == ("23.11.21", "23.05.11")
    assert got["PSU_5"]["changed"] == "removed"
    assert cli("firmware", "changes", "--since", "last tuesday").code == 1


def test_api_compliance_report_and_metrics(make_ctx: Any, auth: Any, peers: dict[str, str]) -> None:
    ctx = make_ctx(firmware={"baselines": str(REPO / "firmware")}, bmc=INSECURE_HTTP)
    with TestClient(create_app(ctx)) as client:
        for host, mac, url in (("dgx03", "aa:00:00:00:02:01", peers["dgx"]), ("old03", "aa:00:00:00:02:02", peers["old"])):
            r = client.post("/api/v1/nodes", headers=auth("operator"), json={
                "hostname": host, "mac": mac, "bmc": {"url": url, "username": "admin", "password": "pw"}})
            assert r.status_code == 201, r.text
        assert client.post("/api/v1/firmware/scan", json={"all": True}, headers=auth("viewer")).status_code == 403
        r = client.post("/api/v1/firmware/scan", json={"all": True}, headers=auth("operator"))
        assert r.status_code == 200 and all(x["ok"] for x in r.json()), r.text
        assert client.post("/api/v1/firmware/scan", json={}, headers=auth("operator")).status_code == 422

        r = client.get("/api/v1/firmware/compliance", params={"status": "outdated"}, headers=auth("viewer"))
        assert [(x["node"], x["component"], x["installed"], x["required"], x["status"]) for x in r.json()] == [
            ("old03", "HostBMC_0", "23.05.11", "23.11.21", "outdated")]
        r = client.get("/api/v1/firmware/compliance", params={"node": "dgx03", "component": "PSU_5"},
                       headers=auth("viewer"))
        assert [x["status"] for x in r.json()] == ["compliant"]
        r = client.get("/api/v1/firmware/compliance", params={"node": "dgx03", "component": "HGX_FW_GPU_SXM_*"},
                       headers=auth("viewer"))
        assert sorted(x["component"] for x in r.json()) == [f"HGX_FW_GPU_SXM_{i}" for i in range(1, 9)]
        r = client.get("/api/v1/firmware/report.html", params={"component": "PSU_[0-1]"}, headers=auth("viewer"))
        assert r.status_code == 200 and "PSU_1" in r.text and "PSU_2" not in r.text
        assert client.get("/api/v1/firmware/compliance", params={"status": "x"},
                          headers=auth("viewer")).status_code == 422
        csv = client.get("/api/v1/firmware/compliance", params={"format": "csv"}, headers=auth("viewer"))
        assert csv.headers["content-type"].startswith("text/csv") and "HostBMC_0" in csv.text
        page = client.get("/api/v1/firmware/report.html", headers=auth("viewer"))
        assert page.status_code == 200 and "<table>" in page.text and 'class="outdated"' in page.text
        assert client.get("/api/v1/firmware/compliance").status_code == 401

        metrics = client.get("/metrics").text
        assert 'dgxie_firmware_noncompliant_components{node="old03",status="outdated"} 1.0' in metrics
        assert 'dgxie_firmware_noncompliant_components{node="old03",status="missing"} 1.0' in metrics
        assert 'dgxie_firmware_components{status="compliant"}' in metrics
        ch = client.get("/api/v1/firmware/changes", params={"since": "1d"}, headers=auth("viewer"))
        assert ch.status_code == 200 and ch.json() == []


def test_baseline_check_cli(cli: Any, config_file: Any, peers: dict[str, str], tmp_path: Path) -> None:
    config_file(bmc=INSECURE_HTTP)
    r = cli("firmware", "baseline", "check")
    assert r.code == 0 and "dgx-h100.yaml: ok (dgx-h100" in r.err
    bad = tmp_path / "typo.yaml"
    bad.write_text("platform: typo\nmodels: [DGXH100]\ncomponents:\n  HostBMC_0: 23.11\n  PSU_[0-5: '1'\n")
    r = cli("firmware", "baseline", "check", str(bad))
    assert r.code == 1
    assert "typo.yaml: components.HostBMC_0: version 23.11 was read as a number; quote it" in r.err
    assert "typo.yaml: components.PSU_[0-5: not a component Id or pattern" in r.err
    _add(cli, tmp_path, "old05", "aa:00:00:00:07:01", peers["old"])
    assert cli("firmware", "scan", "old05").code == 0
    r = cli("firmware", "baseline", "check", "--node", "old05")
    assert r.code == 1 and r.err.endswith("dgxie: error: old05: PSU_5: missing: did you mean PSU_4?\n"), r.err

    # A new baseline FILE is what --node checks (not the configured one): its typo is caught.
    _add(cli, tmp_path, "dgx05", "aa:00:00:00:07:02", peers["dgx"])
    assert cli("firmware", "scan", "dgx05").code == 0
    shipped = (REPO / "firmware" / "dgx-h100.yaml").read_text()
    good, typo = tmp_path / "new.yaml", tmp_path / "new-typo.yaml"
    good.write_text(shipped)
    typo.write_text(shipped.replace("  HostBMC_0:", "  HostBMC_O:"))
    assert cli("firmware", "baseline", "check", "--node", "dgx05").code == 0
    r = cli("firmware", "baseline", "check", str(good), "--node", "dgx05")
    assert r.code == 0 and "new.yaml: ok (dgx-h100" in r.err, r.err
    r = cli("firmware", "baseline", "check", str(typo), "--node", "dgx05")
    assert r.code == 1 and "dgxie: error: dgx05: HostBMC_O: missing: did you mean HostBMC_0?" in r.err, r.err
    other = tmp_path / "other.yaml"
    other.write_text("platform: other\nmodels: [XE9680]\ncomponents:\n  BMC: '1.0'\n")
    r = cli("firmware", "baseline", "check", str(other), "--node", "dgx05")
    assert r.code == 1 and "dgxie: error: dgx05: no baseline for model 'DGXH100' in other.yaml" in r.err, r.err
    r = cli("firmware", "baseline", "check", str(other), "--node", "nobmc05")
    assert r.code == 1 and "no node 'nobmc05'" in r.err
    # Every mistake of every FILE at once, even after a good one.
    worse = tmp_path / "worse.yaml"
    worse.write_text("platform: Worse\nmodels: [X]\ncomponents: {BMC: '1'}\n")
    r = cli("firmware", "baseline", "check", str(good), str(bad), str(worse), "--node", "dgx05")
    assert r.code == 1 and "typo.yaml: components.HostBMC_0" in r.err and "worse.yaml: platform:" in r.err
    assert cli("firmware", "baseline", "check", str(tmp_path / "absent.yaml")).code == 1
