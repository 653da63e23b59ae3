"""Configuration: YAML + DGXIE_* environment, one clear line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from dgxie.config import load
from dgxie.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults() -> None:
    s = load(None)
    assert s.data_dir == Path("/var/lib/dgxie") and s.database_url == "sqlite:////var/lib/dgxie/dgxie.db"
    assert s.api.listen == "127.0.0.1:8080" and s.firmware.baselines is None and s.handoff.templates_dir is None
    assert s.roles["k8s-worker"].groups == ["kube_node"]


def test_the_database_follows_the_data_dir(tmp_path: Path) -> None:
    """database_url defaults to a SQLite file in data_dir, wherever the command runs."""
    assert load(_write(tmp_path, "data_dir: var\n")).database_url == "sqlite:///var/dgxie.db"
    s = load(_write(tmp_path, f"data_dir: {tmp_path}/d\n"))
    assert s.database_url == f"sqlite:///{tmp_path}/d/dgxie.db"
    given = "postgresql+psycopg://u@h/db"
    assert load(_write(tmp_path, f"data_dir: /x\ndatabase_url: {given}\n")).database_url == given


def test_every_mistake_on_its_own_line(tmp_path: Path) -> None:
    p = _write(tmp_path, """
dhcp:
  subnets:
    - {cidr: 10.0.0.0/24, pool: 10.0.1.5-10.0.0.199, routers: [10.0.0.1]}
    - {cidr: 10.0.0.7/24}
    - {cidr: 10.1.0.0/24, routers: [10.2.0.1]}
api: {listen: nope}
database_url: mysql://x
""")
    with pytest.raises(ConfigError) as e:
        load(p)
    lines = e.value.detail.splitlines()
    assert "dhcp.subnets[0].pool: 10.0.1.5 is outside 10.0.0.0/24" in lines
    assert any(line.startswith("dhcp.subnets[1].cidr: '10.0.0.7/24' is not a network address") for line in lines)
    assert "dhcp.subnets[2].routers: 10.2.0.1 is outside 10.1.0.0/24" in lines
    assert "api.listen: 'nope' is not HOST:PORT" in lines
    assert any(line.startswith("database_url: 'mysql'") for line in lines)
    assert len(lines) == 5


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _write(tmp_path, "api: {listen: '127.0.0.1:9000'}\ndhcp: {enabled: false}\n")
    monkeypatch.setenv("DGXIE_API__LISTEN", "0.0.0.0:9100")
    monkeypatch.setenv("DGXIE_DHCP__ENABLED", "true")
    s = load(p)
    assert s.api.listen == "0.0.0.0:9100" and s.dhcp.enabled is True
    monkeypatch.setenv("DGXIE_CONFIG", str(p))
    monkeypatch.delenv("DGXIE_API__LISTEN")
    assert load(None).api.listen == "127.0.0.1:9000"


@pytest.mark.parametrize(("text", "needle"), [
    ("a: [1, 2", "not valid YAML"),
    ("- 1\n- 2\n", "top level must be a mapping"),
    ("unknown_key: 1\n", "unknown_key: Extra inputs are not permitted"),
    ("roles: {r: {groups: []}}\n", "roles.r.groups: a role needs at least one Ansible group"),
    ("profiles: {p: {role: nope}}\n", "profiles.p.role: unknown role 'nope'"),
    ("dhcp: {subnets: [{cidr: 10.0.0.0/24, pool: 10.0.0.9-10.0.0.2}]}\n", "pool: 10.0.0.9 comes after 10.0.0.2"),
])
def test_bad_files(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(_write(tmp_path, text))
    assert needle in e.value.detail


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load("/nonexistent/dgxie.yaml")
