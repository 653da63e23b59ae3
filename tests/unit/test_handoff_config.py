"""Role validation in the config, and the drain/resume hook argv (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dgxie import config
from dgxie.errors import ConfigError, Invalid
from dgxie.handoff.hooks import hook_argv


def load(tmp_path: Path, roles: dict[str, object]) -> config.Settings:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"roles": roles}))
    return config.load(p)


@pytest.mark.parametrize(("role", "msg"), [
    ({"groups": []}, "roles.r.groups: a role needs at least one Ansible group"),
    ({"groups": ["kube_node"], "bootstrap": "ansible"}, "roles.r.playbook: bootstrap ansible needs a playbook"),
    ({"groups": ["slurm-node"], "bootstrap": "cloud-init"}, "roles.r.script: bootstrap cloud-init needs a script"),
    ({"groups": ["x"], "bootstrap": "puppet"}, "roles.r.bootstrap"),
])
def test_bad_roles_are_one_clear_config_error(tmp_path: Path, role: dict[str, object], msg: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, {"r": role})
    assert msg in exc.value.detail


def test_builtin_and_site_roles(tmp_path: Path) -> None:
    assert set(config.Settings().roles) == {"k8s-control", "k8s-worker", "slurm-controller", "slurmd", "slurm-login"}
    s = load(tmp_path, {"gpu-k8s": {"groups": ["kube_node"], "bootstrap": "ansible", "playbook": "p.yml"}})
    assert s.roles["gpu-k8s"].playbook == "p.yml"


def test_hook_argv_substitutes_per_word_without_a_shell() -> None:
    assert hook_argv("scontrol update nodename={hostname} state=drain reason='dgxie maintenance'", "gpu01") == [
        "scontrol", "update", "nodename=gpu01", "state=drain", "reason=dgxie maintenance"]
    assert hook_argv("kubectl cordon {hostname}", "a;rm -rf /") == ["kubectl", "cordon", "a;rm -rf /"]
    with pytest.raises(Invalid):
        hook_argv("echo 'unterminated", "x")
    with pytest.raises(Invalid):
        hook_argv("   ", "x")


def test_config_flag_is_exported_for_child_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """`dgxie serve --config F` -> ansible -> the inventory script must read the same F."""
    import os

    from dgxie.cli import _take_config, common

    monkeypatch.delenv("DGXIE_CONFIG", raising=False)
    monkeypatch.setattr(common, "CONFIG_PATH", [None])
    assert _take_config(["inventory", "--config", "/etc/dgxie/x.yaml", "ansible"]) == ["inventory", "ansible"]
    assert os.environ["DGXIE_CONFIG"] == "/etc/dgxie/x.yaml"
    assert _take_config(["--config=/etc/dgxie/y.yaml", "serve"]) == ["serve"]
    assert os.environ["DGXIE_CONFIG"] == "/etc/dgxie/y.yaml" and common.CONFIG_PATH[0] == "/etc/dgxie/y.yaml"
