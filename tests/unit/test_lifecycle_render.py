"""Rendering install configs without a database: layering, every template set, and bad templates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from dgxie import resources
from dgxie.boot import validate
from dgxie.boot.validate import RenderError
from dgxie.boot.vars import merge
from dgxie.errors import Invalid, NotFound
from dgxie.install import seed
from dgxie.nodes.credentials import boot_token
from tests.support.lifecycle import SSH_KEY, node, site
from tests.support.paths import SHARED

REFERENCE_SCHEMA = SHARED / "reference" / "subiquity-autoinstall-schema.json"
DISKS = ["/dev/nvme0n1", "/dev/nvme1n1"]
UBUNTU_VARIANTS = [
    {},
    {"disk_layout": "direct", "os_disks": DISKS[:1]},
    {"disk_layout": "raid1", "os_disks": DISKS, "apt_mirror": "ubuntu-noble", "packages": ["nvidia-driver-550"],
     "kernel_flavor": "hwe", "early_commands": ["echo early"], "late_commands": ["curtin in-target -- true"],
     "reboot": False, "vendor_data": {"packages": ["ipmitool"]}},
]


def test_packaged_schema_is_the_reference() -> None:
    assert json.loads(validate.SCHEMA_PATH.read_text()) == json.loads(REFERENCE_SCHEMA.read_text())


@pytest.mark.parametrize("pvars", UBUNTU_VARIANTS)
def test_ubuntu_user_data_is_cloud_config_and_valid_autoinstall(pvars: dict[str, object]) -> None:
    st, n = site(), node("ubuntu", profile_vars=pvars)
    r = seed.render(st, n, "user-data", credential="cred-1")
    assert r.text.startswith("#cloud-config\n")
    auto = yaml.safe_load(r.text)["autoinstall"]
    jsonschema.Draft7Validator(json.loads(REFERENCE_SCHEMA.read_text())).validate(auto)  # the reference copy
    assert auto["identity"]["hostname"] == "dgx01"
    assert auto["ssh"]["authorized-keys"] == [SSH_KEY]
    assert auto["network"]["ethernets"]["nic0"] == {"match": {"macaddress": "aa:bb:cc:00:00:01"}, "dhcp4": True,
                                                    "optional": False}
    events_url = f"http://10.0.0.1:8080/boot/n/{boot_token(st.box, n)}/events/cred-1"
    assert auto["reporting"] == {"dgxie": {"type": "webhook", "endpoint": events_url}}
    assert auto["early-commands"][0].endswith("-d event=started " + events_url)
    assert auto["late-commands"][-1].endswith("-d event=finished " + events_url)


def test_raid1_storage_and_mirror() -> None:
    r = seed.render(site(), node("ubuntu", profile_vars=UBUNTU_VARIANTS[2]), "user-data")
    auto = yaml.safe_load(r.text)["autoinstall"]
    cfg = auto["storage"]["config"]
    raid = next(c for c in cfg if c["type"] == "raid")
    assert raid["raidlevel"] == "raid1" and raid["devices"] == ["root0", "root1"]
    assert [c["path"] for c in cfg if c["type"] == "disk"] == DISKS
    assert {"type": "mount", "id": "md0-mnt", "device": "md0-fs", "path": "/"} in cfg
    assert auto["apt"]["primary"] == [{"arches": ["default"], "uri": "http://10.0.0.1:8080/mirror/apt/ubuntu-noble"}]
    assert auto["kernel"] == {"flavor": "hwe"} and auto["shutdown"] == "poweroff"


def test_meta_and_vendor_data() -> None:
    n = node("ubuntu")
    md = yaml.safe_load(seed.render(site(), n, "meta-data").text)
    assert md["local-hostname"] == "dgx01" and md["instance-id"].startswith("dgxie-dgx01-")
    assert "tok-" not in md["instance-id"]  # derived from the token, never the token
    n.boot_nonce = "another-nonce-after-reprovision"
    assert yaml.safe_load(seed.render(site(), n, "meta-data").text)["instance-id"] != md["instance-id"]
    vd = seed.render(site(), node("ubuntu", node_vars={"vendor_data": {"runcmd": ["true"]}}), "vendor-data")
    assert vd.text.startswith("#cloud-config\n") and yaml.safe_load(vd.text) == {"runcmd": ["true"]}


def test_preseed_and_kickstart_carry_the_callbacks() -> None:
    pre = seed.render(site(), node("debian"), "preseed").text
    assert "d-i preseed/early_command string wget -q -O /dev/null --post-data event=started http://" in pre
    assert "--post-data event=finished http://10.0.0.1:8080/boot/n/" in pre
    ks = seed.render(site(), node("rhel", profile_vars={"disk_layout": "raid1", "os_disks": DISKS}), "kickstart").text
    assert "raid / --device=md0 --level=RAID1" in ks and "-d event=finished http://" in ks
    assert "network --bootproto=dhcp --device=aa:bb:cc:00:00:01 --hostname=dgx01.lab.example" in ks


def test_layering_node_wins_and_explain_names_the_layer() -> None:
    s = site(global_vars={"packages": ["g"], "locale": "de_DE.UTF-8", "hostname": "evil"},
             site_vars={"packages": ["s"], "admin_user": "ops"})
    n = node("ubuntu", profile_vars={"packages": ["p"], "disk_layout": "direct"}, node_vars={"packages": ["n"]})
    merged = seed.node_vars(s, n)
    rows = {k: (v, layer, lower) for k, v, layer, lower in merged.explain()}
    assert rows["packages"] == (["n"], "node", ["default", "global", "site", "profile"])
    assert rows["locale"] == ("de_DE.UTF-8", "global", ["default"])
    assert rows["admin_user"] == ("ops", "site", ["default"])
    assert rows["disk_layout"] == ("direct", "profile", ["default"])
    assert rows["domain"] == ("lab.example", "site", [])
    assert rows["hostname"] == ("dgx01", "dgxie", ["global"])  # facts cannot be overridden
    assert rows["fqdn"][0] == "dgx01.lab.example"


def test_merge_is_shallow_and_ordered() -> None:
    m = merge([("a", {"x": {"k": 1}, "y": 1}), ("b", {"x": {"j": 2}})])
    assert m.values == {"x": {"j": 2}, "y": 1} and m.source == {"x": "b", "y": "a"}


def test_artifact_the_template_set_lacks_is_not_found() -> None:
    with pytest.raises(NotFound):
        seed.render(site(), node("ubuntu"), "preseed")
    with pytest.raises(NotFound):
        seed.render(site(), node("debian"), "user-data")
    with pytest.raises(NotFound):
        seed.render(site(), node("ubuntu"), "../../etc/passwd")


@pytest.mark.parametrize(("pvars", "needle"), [
    ({"disk_layout": "raid1", "os_disks": ["/dev/sda"]}, "raid1 needs os_disks: two disk paths (it has 1)"),
    ({"disk_layout": "zfs"}, "disk_layout must be lvm, direct or raid1, not zfs"),
    ({"locale": 5}, "autoinstall.locale: 5 is not of type 'string'"),
    ({"packages": "htop"}, "autoinstall.packages: 'htop' is not of type 'array'"),
    ({"disk_layout": "raid1", "os_disks": 5}, "TypeError: object of type 'int' has no len()"),
    ({"apt_mirror": "nope"}, "apt_mirror: no APT mirror named 'nope' (known: ubuntu-noble)"),
])
def test_bad_variables_are_clear_errors(pvars: dict[str, object], needle: str) -> None:
    with pytest.raises(Invalid) as err:
        seed.render(site(), node("ubuntu", profile_vars=pvars), "user-data")
    assert needle in err.value.detail


def test_schema_error_names_the_rendered_line() -> None:
    with pytest.raises(RenderError) as err:
        seed.render(site(), node("ubuntu", profile_vars={"locale": 5}), "user-data")
    assert err.value.template == "ubuntu/user-data.j2" and err.value.key == "autoinstall.locale"
    assert err.value.line == 5  # `  locale: 5` in the rendered user-data


def test_profile_without_image_and_mismatched_image() -> None:
    with pytest.raises(Invalid, match="ubuntu-worker: has no image"):
        seed.render(site(), node("ubuntu", image=False), "user-data")
    n = node("ubuntu")
    assert n.profile is not None and n.profile.image is not None
    n.profile.image.os = "debian"
    with pytest.raises(Invalid, match="does not fit image"):
        seed.render(site(), n, "user-data")


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    dst = tmp_path / "templates"
    shutil.copytree(resources.templates(), dst)
    return dst


def test_template_syntax_error_names_template_and_line(templates: Path) -> None:
    p = templates / "ubuntu" / "meta-data.j2"
    p.write_text(p.read_text() + "{% if %}\n")
    with pytest.raises(RenderError) as err:
        seed.render(site(templates_dir=templates), node("ubuntu"), "meta-data")
    assert err.value.template == "ubuntu/meta-data.j2" and err.value.line == 3
    assert "syntax error" in err.value.detail


def test_undefined_variable_names_template_line_and_key(templates: Path) -> None:
    p = templates / "ubuntu" / "user-data.j2"
    lines = p.read_text().splitlines(keepends=True)
    lines.insert(4, "  locale2: {{ no_such_var | yaml }}\n")
    p.write_text("".join(lines))
    with pytest.raises(RenderError) as err:
        seed.render(site(templates_dir=templates), node("ubuntu"), "user-data")
    assert (err.value.template, err.value.line, err.value.key) == ("ubuntu/user-data.j2", 5, "no_such_var")


def test_output_that_is_not_yaml_is_refused(templates: Path) -> None:
    (templates / "ubuntu" / "user-data.j2").write_text("#cloud-config\nautoinstall: [unclosed\n")
    with pytest.raises(RenderError, match="not valid YAML"):
        seed.render(site(templates_dir=templates), node("ubuntu"), "user-data")
    (templates / "ubuntu" / "user-data.j2").write_text("autoinstall: {version: 1}\n")
    with pytest.raises(RenderError, match="#cloud-config"):
        seed.render(site(templates_dir=templates), node("ubuntu"), "user-data")


def test_preseed_and_kickstart_validators() -> None:
    validate.validate_preseed("# c\nd-i a/b string x \\\n  y\n", "t")
    with pytest.raises(RenderError, match="line 2"):
        validate.validate_preseed("d-i a/b string x\nd-i foo\n", "t")
    with pytest.raises(RenderError, match="unknown debconf type 'strin'"):
        validate.validate_preseed("d-i a/b strin x\n", "t")
    validate.validate_kickstart("text\n%pre\ntrue\n%end\n", "t")
    with pytest.raises(RenderError, match="never closed"):
        validate.validate_kickstart("%post\ntrue\n", "t")
    with pytest.raises(RenderError, match="without a section"):
        validate.validate_kickstart("%end\n", "t")


def test_schema_errors_never_echo_a_password() -> None:
    with pytest.raises(RenderError) as err:
        seed.render(site(), node("ubuntu", node_vars={"admin_password_hash": 123456789}), "user-data")
    assert err.value.key == "autoinstall.identity.password" and "123456789" not in err.value.detail
    assert "fails the schema's 'type' rule (value not shown)" in err.value.detail
