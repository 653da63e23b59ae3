"""deploy/helm/dgxie rendered offline by Helm's own Go SDK (helm-python-sdk, the dev extra): no helm
binary, no cluster (`lookup` finds nothing). Used by tests/integration/test_helm_chart.py and
tests/e2e/test_compose.py."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import yaml

from tests.support.paths import REPO

CHART = REPO / "deploy" / "helm" / "dgxie"
KEY = "bmV2ZXItdXNlLXRoaXMta2V5LWluLXByb2R1Y3Rpb24="  # 32 url-safe base64 bytes, like a Fernet key


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object `helm template site CHART -n prov` makes with VALUES."""
    with helm.Chart.load(str(CHART)) as chart:
        manifests = chart.render(values, name="site", namespace="prov")
    return [doc for path, text in sorted(manifests.items()) if path.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def one(objs: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    """The one object of KIND whose name ends with SUFFIX."""
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, [(o["kind"], o["metadata"]["name"]) for o in objs]
    return found[0]
