"""docs/deploy-ha.md stays true: the files and tests it names exist, the chart values it names are
in deploy/helm/dgxie/values.yaml, the compose variables it lists are exactly docker-compose.yml's,
and docs/deploy.md links it."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.support.paths import REPO

DOC = (REPO / "docs" / "deploy-ha.md").read_text()
VALUES: dict[str, Any] = yaml.safe_load((REPO / "deploy" / "helm" / "dgxie" / "values.yaml").read_text())
TOP_KEYS = set(VALUES) - {"config"}


def _ticked() -> set[str]:
    return set(re.findall(r"`([^`\s]+)`", DOC))


def test_named_files_exist() -> None:
    paths = {t.rstrip("/") for t in _ticked()
             if re.match(r"^(deploy|tests|docs|scripts)/|^(Dockerfile|docker-compose\.yml)$", t)}
    assert len(paths) >= 8, paths
    assert [p for p in paths if not (REPO / p).exists()] == []


def test_named_chart_values_exist() -> None:
    named = {t.removesuffix(".*") for t in _ticked() if t.split(".")[0] in TOP_KEYS}
    assert {"api.replicas", "boot.nodeSelector", "existingSecret", "postgresql.enabled"} <= named
    for dotted in named:
        node: Any = VALUES
        for part in dotted.split("."):
            assert isinstance(node, dict) and part in node, dotted
            node = node[part]


def test_compose_variables_are_the_files() -> None:
    in_file = set(re.findall(r"\$\{(DGXIE_[A-Z_]+)", (REPO / "docker-compose.yml").read_text()))
    section = DOC.split("Compose variables:", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"`(DGXIE_[A-Z_]+)`", section)) == in_file


def test_linked_from_deploy_md() -> None:
    assert "(deploy-ha.md)" in (REPO / "docs" / "deploy.md").read_text()
