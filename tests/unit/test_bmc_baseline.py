"""Firmware baselines: the shipped files load, the DGX H100 one matches the real capture exactly,
and bad files (typo'd component, bad version, unquoted number, unknown key) get clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dgxie import resources
from dgxie.errors import Invalid
from dgxie.firmware.baseline import Requirement, load_dir, load_file, load_site, parse, pick, site_files
from tests.support.paths import REPO

CAPTURE = REPO / ".." / "shared" / "reference" / "redfish" / "nvidia-dgx-h100" / "redfish" / "v1"


def capture_versions() -> dict[str, str]:
    out = {}
    for f in (CAPTURE / "UpdateService" / "FirmwareInventory").glob("*/index.json"):
        doc = json.loads(f.read_text())
        out[doc["Id"]] = doc["Version"]
    return out


def test_shipped_baselines_load_and_pick() -> None:
    bs = load_dir(REPO / "firmware")
    assert {b.platform for b in bs} >= {"dgx-h100", "generic"}
    assert pick(bs, "DGXH100").platform == "dgx-h100"
    assert pick(bs, "dgx h100").platform == "dgx-h100"  # case and blanks do not matter
    assert pick(bs, "3500").platform == "generic"
    assert pick([b for b in bs if not b.generic], "3500") is None


def test_dgx_h100_baseline_is_the_capture() -> None:
    versions = capture_versions()
    assert len(versions) == 66
    b = load_file(REPO / "firmware" / "dgx-h100.yaml")
    named = [cid for r in b.requirements for cid in (r.expand() or [])]
    assert sorted(named) == sorted(versions)  # every captured Id, each exactly once
    for cid, v in versions.items():
        req = b.required(cid)
        assert req is not None and req.version == v, cid
    assert b.unmatched(set(versions)) == []


def test_pattern_expansion() -> None:
    assert Requirement("PSU_[0-5]", "1").expand() == [f"PSU_{i}" for i in range(6)]
    assert Requirement("HGX_FW_GPU_SXM_[1-8]", "1").expand() == [f"HGX_FW_GPU_SXM_{i}" for i in range(1, 9)]
    assert Requirement("X_[ab]_[12]", "1").expand() == ["X_a_1", "X_a_2", "X_b_1", "X_b_2"]
    assert Requirement("HGX_*", "1").expand() is None
    assert Requirement("HGX_*", "1").matches("HGX_FW_BMC_0")


def test_typo_component_is_reported_with_a_hint() -> None:
    b = parse({"platform": "x", "models": ["X"], "components": {"HostBMC_O": "23.11.21", "PSU_[0-6]": "1"}}, "x.yaml")
    missing = dict(b.unmatched({"HostBMC_0", *(f"PSU_{i}" for i in range(6))}))
    assert missing == {"HostBMC_O": "HostBMC_0", "PSU_6": "PSU_5"}


@pytest.mark.parametrize(("doc", "message"), [
    ({"platform": "x", "models": ["X"], "components": {"HostBMC_0": 23.1}}, 'read as a number; quote it, e.g. "23.1"'),
    ({"platform": "x", "models": ["X"], "components": {"HostBMC_0": "23.11 ;rm"}}, "is not a version"),
    ({"platform": "x", "models": ["X"], "components": {"Host BMC": "1.0"}}, "not a component Id or pattern"),
    ({"platform": "x", "models": ["X"], "components": {"PSU_[0-5": "1.0"}}, "not a component Id or pattern"),
    ({"platform": "x", "models": ["X"], "components": {"PSU_[0-5]": "1", "PSU_3": "2"}}, "PSU_3 is already required"),
    ({"platform": "x", "models": ["X"], "component": {"A": "1"}}, "component: unknown key"),
    ({"platform": "X Y", "models": ["X"], "components": {"A": "1"}}, "platform: needs a lower-case name"),
    ({"platform": "x", "models": [], "components": {"A": "1"}}, "models: needs a list"),
    ({"platform": "x", "models": ["X"], "components": {}}, "components: needs a mapping"),
])
def test_bad_baselines(doc: dict[str, object], message: str) -> None:
    with pytest.raises(Invalid) as exc:
        parse(doc, "bad.yaml")
    assert message in exc.value.detail
    assert exc.value.detail.startswith("bad.yaml: ")


def test_all_mistakes_at_once_and_bad_yaml(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"platform": "a", "models": ["A"], "components": {"X": 1.5,
                                                                                                       "Y": ""}}))
    (tmp_path / "b.yaml").write_text("platform: [unclosed\n")
    with pytest.raises(Invalid) as exc:
        load_dir(tmp_path)
    lines = exc.value.detail.splitlines()
    assert any("a.yaml: components.X" in ln for ln in lines)
    assert any("a.yaml: components.Y" in ln for ln in lines)
    assert any("b.yaml" in ln and "not valid YAML" in ln for ln in lines)


def test_a_site_folder_overrides_the_shipped_baselines_file_by_file(tmp_path: Path) -> None:
    """The shipped baselines come from dgxie.resources; a site file of the same name replaces one,
    a new name adds a platform, the others stay (and `site_files` names the file in force)."""
    assert [f.name for f in site_files(None)] == ["dgx-h100.yaml", "generic.yaml"]
    assert all(f.parent == resources.baselines() for f in site_files(None))
    (tmp_path / "dgx-h100.yaml").write_text(yaml.safe_dump(
        {"platform": "dgx-h100", "models": ["DGXH100"], "components": {"HostBMC_0": "24.01.01"}}))
    (tmp_path / "hgx-b200.yaml").write_text(yaml.safe_dump(
        {"platform": "hgx-b200", "models": ["HGX B200"], "components": {"BMC": "1.0"}}))
    files = site_files(tmp_path)
    assert [(f.parent == tmp_path, f.name) for f in files] == [(True, "dgx-h100.yaml"), (False, "generic.yaml"),
                                                              (True, "hgx-b200.yaml")]
    bs = load_site(tmp_path)
    assert [r.version for r in pick(bs, "DGXH100").requirements] == ["24.01.01"]
    assert pick(bs, "HGX B200").platform == "hgx-b200" and pick(bs, "3500").platform == "generic"
    assert load_site(None) == load_dir(REPO / "firmware")  # nothing configured: exactly the shipped ones


def test_site_baselines_mistakes(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match=r"^firmware.baselines: .*/nope is not a directory$"):
        load_site(tmp_path / "nope")
    (tmp_path / "h100-copy.yaml").write_text((REPO / "firmware" / "dgx-h100.yaml").read_text())
    with pytest.raises(Invalid) as exc:
        load_site(tmp_path)  # under another name, the copy defines the shipped platform a second time
    assert exc.value.detail == (f"platform dgx-h100 is defined twice ({resources.baselines() / 'dgx-h100.yaml'}, "
                                f"{tmp_path / 'h100-copy.yaml'})")
