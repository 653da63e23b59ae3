"""deploy/helm/dgxie rendered and checked offline: Helm's own Go SDK (helm-python-sdk: `helm lint`
and `helm template` without a cluster), every rendered object validated against the Kubernetes
OpenAPI schemas (kubernetes-validate, strict: an unknown field fails), and what docs/deploy-ha.md
promises of the chart checked on the objects: replicas, roles, probes, host networking and
capabilities of the boot services, the PodDisruptionBudget, Secrets and requests. The dgxie.yaml
each ConfigMap carries is loaded with dgxie's own config loader.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import helm_python as helm  # the dev extra: Helm's Go SDK, no helm binary, no cluster
import kubernetes_validate as kv  # the dev extra: Kubernetes OpenAPI schemas, offline
import pytest
import yaml

import dgxie
from dgxie.config import load
from tests.support.chart import CHART, KEY, one, render

EXTERNAL = {"secretKey": KEY, "database": {"url": "postgresql+psycopg://dgxie:pw@db.example.com:5432/dgxie"}}
BUNDLED = {"secretKey": KEY, "postgresql": {"enabled": True, "password": "s3cret"}}
KUBE_VERSIONS = ("1.29", kv.utils.latest_version())  # the oldest one still supported upstream, the newest known


def test_chart_version_follows_dgxie() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["appVersion"] == dgxie.__version__


@pytest.mark.parametrize("values", [EXTERNAL, BUNDLED], ids=["external-db", "bundled-db"])
def test_lint_is_clean(values: dict[str, Any]) -> None:
    report = helm.lint(str(CHART), values, strict=True)
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == [], report


@pytest.mark.parametrize("values", [EXTERNAL, BUNDLED], ids=["external-db", "bundled-db"])
def test_every_object_matches_the_kubernetes_schema(values: dict[str, Any]) -> None:
    objs = render(values)
    kinds = sorted(o["kind"] for o in objs)
    expected = ["ConfigMap", "ConfigMap", "DaemonSet", "Deployment", "PodDisruptionBudget", "Secret", "Service"]
    if values is BUNDLED:
        expected = sorted([*expected, "Service", "StatefulSet"])
    assert kinds == expected
    for version in KUBE_VERSIONS:
        for obj in objs:
            kv.validate(obj, version, strict=True)  # raises ValidationError naming the bad field


def test_a_bad_object_is_refused_by_the_validator() -> None:
    """The validator is not a no-op: a typo in a container field fails."""
    dep = one(render(EXTERNAL), "Deployment", "-api")
    dep["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kv.ValidationError):
        kv.validate(dep, KUBE_VERSIONS[-1], strict=True)


def test_api_deployment_service_and_pdb() -> None:
    objs = render(EXTERNAL)
    dep, svc, pdb = one(objs, "Deployment", "-api"), one(objs, "Service", "-api"), one(objs, "PodDisruptionBudget", "-api")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["replicas"] >= 2
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert 1 <= pdb["spec"]["minAvailable"] < dep["spec"]["replicas"]  # a drain can proceed, never to zero
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["serve", "--role", "api"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    live = c["livenessProbe"]  # /healthz is 503 while the database is away: no restart for a short outage
    assert live["periodSeconds"] * live["failureThreshold"] >= 120
    assert {"cpu", "memory"} <= c["resources"]["requests"].keys()
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_boot_daemonset_on_labelled_nodes_with_host_network() -> None:
    ds = one(render(EXTERNAL), "DaemonSet", "-boot")
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert spec["nodeSelector"] == {"dgxie.io/boot": "true"}
    (c,) = spec["containers"]
    assert c["args"] == ["serve", "--role", "boot"]
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "NET_RAW"]}
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"cpu", "memory"} <= c["resources"]["requests"].keys()
    assert {(p["containerPort"], p["protocol"]) for p in c["ports"]} >= {(67, "UDP"), (69, "UDP")}


@pytest.mark.parametrize("values", [EXTERNAL, BUNDLED], ids=["external-db", "bundled-db"])
def test_secrets_come_from_the_secret_and_configs_load(values: dict[str, Any], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    objs = render(values)
    secret = {k: base64.b64decode(v).decode() for k, v in one(objs, "Secret", "-secrets")["data"].items()}
    url = secret["database-url"]
    if values is BUNDLED:
        assert url == "postgresql+psycopg://dgxie:s3cret@site-dgxie-postgresql:5432/dgxie"
        assert one(objs, "Service", "-postgresql")["metadata"]["name"] == "site-dgxie-postgresql"
    else:
        assert url == values["database"]["url"]
    assert secret["secret-key"] == KEY
    for kind, suffix in (("Deployment", "-api"), ("DaemonSet", "-boot")):
        (c,) = one(objs, kind, suffix)["spec"]["template"]["spec"]["containers"]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
        assert {n: r["key"] for n, r in refs.items()} == {"DGXIE_SECRET_KEY": "secret-key",
                                                          "DGXIE_DATABASE_URL": "database-url"}
        assert {r["name"] for r in refs.values()} == {"site-dgxie-secrets"}
    monkeypatch.setenv("DGXIE_DATABASE_URL", url)
    monkeypatch.setenv("DGXIE_SECRET_KEY", KEY)
    for role, listen in (("api", "0.0.0.0:8080"), ("boot", "0.0.0.0:8080")):
        text = one(objs, "ConfigMap", f"-{role}")["data"]["dgxie.yaml"]
        assert "s3cret" not in text and KEY not in text and "pw@" not in text
        (tmp_path / f"{role}.yaml").write_text(text)
        settings = load(tmp_path / f"{role}.yaml")  # dgxie's own validation (extra keys are refused)
        assert settings.api.listen == listen and settings.database_url == url
        assert settings.tftp.enabled is (role == "boot")


@pytest.mark.parametrize(("values", "message"), [
    ({"database": {"url": "postgresql+psycopg://x@y/z"}}, "secretKey is required"),
    ({"secretKey": KEY}, "database.url is required"),
    ({"secretKey": KEY, "postgresql": {"enabled": True}}, "postgresql.password is required"),
], ids=["no-key", "no-database", "bundled-no-password"])
def test_missing_secrets_refuse_to_render(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render(values)


def test_existing_secret_makes_no_secret() -> None:
    objs = render({"existingSecret": "site-made"})
    assert [o for o in objs if o["kind"] == "Secret"] == []
    (c,) = one(objs, "Deployment", "-api")["spec"]["template"]["spec"]["containers"]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "valueFrom" in e} == {"site-made"}
