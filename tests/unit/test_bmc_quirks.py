"""Vendor quirks and parsing as pure functions, fed with the real captures' documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dgxie.bmc import quirks
from dgxie.bmc.base import BmcAuthError, BmcProtocolError, Component, Endpoint
from dgxie.bmc.facts import system_facts
from dgxie.bmc.ipmi import parse_bootparam, parse_power
from dgxie.bmc.transport import backoff_delays, decode, error_message
from tests.support.paths import SHARED

REF = SHARED / "reference" / "redfish"
DGX = REF / "nvidia-dgx-h100" / "redfish" / "v1"
RACK = REF / "dmtf-public-rackmount1" / "redfish" / "v1"


def doc(root: Path, rel: str) -> dict[str, Any]:
    return json.loads((root / rel / "index.json").read_text())  # type: ignore[no-any-return]


def test_count_disagrees_with_members_trust_members() -> None:
    uris, note = quirks.member_uris(doc(RACK, "UpdateService/FirmwareInventory"))
    assert len(uris) == 3
    assert note is not None and "Members@odata.count is 2 but 3" in note
    uris, note = quirks.member_uris(doc(DGX, "UpdateService/FirmwareInventory"))
    assert len(uris) == 66 and note is None


def test_reset_plans_follow_allowable_values() -> None:
    system = doc(DGX, "Systems/DGX")
    allowed = quirks.allowed_resets(system, doc(DGX, "Systems/DGX/ResetActionInfo"))
    assert allowed == ["ForceOff", "ForceRestart", "GracefulShutdown", "On"]
    assert quirks.reset_plan("cycle", allowed) == ("ForceRestart",)  # no PowerCycle on the DGX
    assert quirks.reset_plan("cycle", ["On", "ForceOff"]) == ("ForceOff", "On")
    assert quirks.reset_plan("on", allowed) == ("On",)
    assert quirks.reset_plan("off", ["GracefulShutdown"]) == ("GracefulShutdown",)
    assert quirks.reset_plan("cycle", None) == ("PowerCycle",)
    with pytest.raises(BmcProtocolError):
        quirks.reset_plan("off", ["On"])
    inline = quirks.allowed_resets(doc(RACK, "Systems/437XR1138R2"))
    assert inline is not None and "PushPowerButton" in inline


def test_expand_advertised() -> None:
    assert quirks.expand_supported(doc(DGX, ""))
    assert not quirks.expand_supported({"ProtocolFeaturesSupported": {}})
    assert not quirks.is_expanded(doc(DGX, "UpdateService/FirmwareInventory"))
    assert quirks.is_expanded({"Members": [{"Id": "A", "Version": "1"}]})


def test_manager_version_differs_from_inventory() -> None:
    comps = [quirks.component(doc(DGX, f"UpdateService/FirmwareInventory/{c}")) for c in ("HostBMC_0", "HGX_FW_BMC_0")]
    ids = {c.id for c in comps}
    bmc, hgx = doc(DGX, "Managers/BMC"), doc(DGX, "Managers/HGX_BMC_0")
    managers = {str(m["Id"]): (m.get("FirmwareVersion"), quirks.manager_component(m, ids)) for m in (bmc, hgx)}
    assert managers[str(bmc["Id"])] == ("23.11.20", "HostBMC_0")
    assert managers[str(hgx["Id"])][1] == "HGX_FW_BMC_0"
    notes = quirks.manager_notes(managers, comps)
    assert notes == ["Manager BMC FirmwareVersion 23.11.20 differs from inventory HostBMC_0 23.11.21; inventory wins"]


def test_component_and_etag() -> None:
    c = quirks.component({"@odata.id": "/redfish/v1/UpdateService/FirmwareInventory/X", "Version": ""})
    assert c == Component(id="X", version=None, name="", updateable=None)
    assert quirks.if_match({"@odata.etag": '"1"'}, None) == {"If-Match": '"1"'}
    assert quirks.if_match({"@odata.etag": '"1"'}, 'W/"2"') == {"If-Match": 'W/"2"'}
    assert quirks.if_match({}, None) == {}
    assert quirks.already_in_state(409, "") and not quirks.already_in_state(500, "")


def test_facts_from_captures() -> None:
    dgx = system_facts([doc(DGX, "Systems/DGX"), doc(DGX, "Systems/HGX_Baseboard_0")],
                       quirks.members(doc(DGX, "Systems/HGX_Baseboard_0/Processors"))[0]
                       + quirks.members(doc(DGX, "Systems/DGX/Processors"))[0])
    assert dgx["model"] == "DGXH100" and dgx["serial"] == "1662923610124"
    assert dgx["sockets"] == 2 and dgx["memory_mib"] == 2048 * 1024 and dgx["gpus"] == 8
    rack = system_facts([doc(RACK, "Systems/437XR1138R2")], [])
    assert (rack["sockets"], rack["cores_per_socket"], rack["threads_per_core"], rack["cpus"]) == (2, 4, 2, 16)
    assert rack["memory_mib"] == 96 * 1024 and rack["gpus"] == 0


def test_decode_reports_what_came_instead() -> None:
    with pytest.raises(BmcProtocolError, match="HTML instead of Redfish JSON"):
        decode("u", 200, b"<html><body>Login</body></html>", "text/html")
    with pytest.raises(BmcProtocolError, match="truncated or invalid JSON"):
        decode("u", 200, b'{"Members": [', "application/json")
    with pytest.raises(BmcAuthError):
        decode("u", 401, b"", None)
    with pytest.raises(BmcProtocolError, match="HTTP 404: nope"):
        decode("u", 404, json.dumps({"error": {"message": "nope"}}), "application/json")
    assert error_message(json.dumps({"error": {"@Message.ExtendedInfo": [{"Message": "busy"}]}})) == "busy"
    assert backoff_delays(3, 0.5) == [0.5, 1.0, 2.0]


def test_endpoint_never_shows_its_password() -> None:
    ep = Endpoint("https://b", "admin", "s3cret")
    assert "s3cret" not in repr(ep) and "s3cret" not in str(ep.key)
    assert Endpoint("https://b", "admin", "other").key != ep.key


def test_ipmitool_output_parsing() -> None:
    assert parse_power("Chassis Power is on\n") == "on"
    assert parse_power("junk\nChassis Power is off") == "off"
    assert parse_power("") == "unknown"
    out = parse_bootparam(" Boot Flags :\n   - Options apply to only next boot\n   - Boot Device Selector : Force PXE\n")
    assert out == {"device": "pxe", "once": True, "efi": False}


def test_endpoint_url_may_name_a_system() -> None:
    ep = Endpoint("http://127.0.0.1:8000/redfish/v1/Systems/abc/")
    assert (ep.base, ep.system) == ("http://127.0.0.1:8000", "/redfish/v1/Systems/abc")
    assert Endpoint("https://10.0.0.5").system is None and Endpoint("https://10.0.0.5/").base == "https://10.0.0.5"
