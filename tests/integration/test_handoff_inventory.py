"""Inventories from the database: CLI == API, and real `ansible-inventory` reading dgxie's script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dgxie.boot.state import State
from dgxie.compose import build_context
from dgxie.config import Settings
from tests.support.handoff import FACTS_DGX, add_node
from tests.support.paths import REPO

ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")


def test_cli_list_host_and_api_agree(ctx, client, auth, cli) -> None:
    add_node(ctx, "mgmt01", 1, role="k8s-control", state=State.READY)
    add_node(ctx, "gpu01", 2, role="k8s-worker", state=State.READY, facts=FACTS_DGX, vars={"ansible_user": "dgx"})
    add_node(ctx, "gpu02", 3, role="slurmd", state=State.ENROLLED)  # not installed: left out unless --all
    r = cli("inventory", "ansible", "--list")
    assert r.code == 0, r.err
    inv = json.loads(r.out)
    api = client.get("/api/v1/inventory/ansible", headers=auth("viewer"))
    assert api.status_code == 200 and api.json() == inv
    assert inv["kube_node"]["hosts"] == ["gpu01"] and inv["slurm-node"]["hosts"] == []
    hv = inv["_meta"]["hostvars"]["gpu01"]
    assert hv["ansible_host"] == "10.0.0.2" and hv["dgxie_gpu_count"] == 8 and hv["ansible_user"] == "dgx"
    assert hv["dgxie_gpu_model"] == "NVIDIA H100 80GB HBM3" and hv["dgxie_memory_mib"] == 2097152
    r = cli("inventory", "ansible", "--host", "gpu01")
    assert json.loads(r.out) == hv
    assert client.get("/api/v1/inventory/ansible/hosts/gpu01", headers=auth("viewer")).json() == hv
    r = cli("inventory", "ansible", "--list", "--all", "--layout", "hyphenated")
    assert json.loads(r.out)["slurm-node"]["hosts"] == ["gpu02"] and "kube-node" in json.loads(r.out)
    # bad input: one line, exit 1 / 422, and auth
    r = cli("inventory", "ansible", "--layout", "sideways")
    assert r.code == 1 and r.err.startswith("dgxie: error: layout: 'sideways'")
    assert cli("inventory", "ansible", "--list", "--ini").code == 1
    assert client.get("/api/v1/inventory/ansible?layout=x", headers=auth("viewer")).status_code == 422
    assert client.get("/api/v1/inventory/ansible").status_code == 401


def test_slurm_lines_warn_about_nodes_without_facts(ctx, client, auth, cli, tmp_path: Path) -> None:
    add_node(ctx, "gpu01", 2, role="slurmd", state=State.READY)
    r = cli("inventory", "slurm")
    assert r.code == 0
    assert "dgxie: warning: gpu01: no hardware facts; no Gres" in r.err
    assert "NodeName=gpu01 NodeAddr=10.0.0.2 State=UNKNOWN" in r.out and "Gres=" not in r.out
    p = client.patch("/api/v1/nodes/gpu01", json={"facts": FACTS_DGX}, headers=auth("operator"))
    assert p.status_code == 200, p.text
    r = cli("inventory", "slurm")
    assert r.err == "" and "CPUs=224 Sockets=2 CoresPerSocket=56 ThreadsPerCore=2" in r.out and "Gres=gpu:8" in r.out
    out = tmp_path / "gres.conf"
    r = cli("inventory", "slurm", "--gres", "--output", str(out))
    assert r.code == 0 and "NodeName=gpu01 Name=gpu File=/dev/nvidia[0-7]" in out.read_text()
    api = client.get("/api/v1/inventory/slurm?partition_by=tag", headers=auth("viewer")).json()
    assert "Gres=gpu:8" in api["slurm_conf"] and api["warnings"] == []
    assert cli("inventory", "slurm", "--partition-by", "rack").code == 1


@pytest.fixture
def site_config(sqlite_url: str, tmp_path: Path) -> Path:
    cfg = tmp_path / "dgxie.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": sqlite_url, "data_dir": str(tmp_path / "data")}))
    return cfg


SHIPPED_SCRIPT = REPO / "scripts" / "dgxie-inventory"


def test_ansible_inventory_reads_the_dynamic_script_and_the_ini(site_config: Path, tmp_path: Path) -> None:
    """Real peer: ansible-core's `ansible-inventory` runs dgxie as an inventory script."""
    assert shutil.which(ANSIBLE_INVENTORY), "ansible-core is a dev dependency"
    ctx = build_context(Settings(**yaml.safe_load(site_config.read_text())))
    add_node(ctx, "mgmt01", 1, role="k8s-control", state=State.READY)
    add_node(ctx, "login01", 4, role="slurm-controller", state=State.READY)
    add_node(ctx, "gpu01", 2, role="k8s-worker", state=State.INSTALLED, facts=FACTS_DGX)
    add_node(ctx, "gpu02", 3, role="slurmd", state=State.BOOTSTRAPPING, facts={"gpus": 4})
    ctx.engine.dispose()
    env = dict(os.environ, DGXIE_CONFIG=str(site_config),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    script = SHIPPED_SCRIPT
    run = lambda *a: subprocess.run([ANSIBLE_INVENTORY, *a], env=env, capture_output=True, text=True,  # noqa: E731
                                    timeout=120, check=False)
    lst = run("-i", str(script), "--list")
    assert lst.returncode == 0, lst.stderr
    inv = json.loads(lst.stdout)
    assert inv["kube_control_plane"]["hosts"] == ["mgmt01"] and inv["etcd"]["hosts"] == ["mgmt01"]
    assert inv["k8s_cluster"]["children"] == ["kube_control_plane", "kube_node"]
    assert inv["slurm-master"]["hosts"] == ["login01"] and inv["slurm-node"]["hosts"] == ["gpu02"]
    assert inv["_meta"]["hostvars"]["gpu02"]["dgxie_gpu_count"] == 4
    assert inv["_meta"]["hostvars"]["gpu01"]["ansible_host"] == "10.0.0.2"
    graph = run("-i", str(script), "--graph")
    assert graph.returncode == 0, graph.stderr
    g = graph.stdout
    for expect in ("@k8s_cluster:", "|--@kube_node:", "|--gpu01", "@slurm-cluster:", "|--@slurm-login:",
                   "|--login01", "|--gpu02", "|--mgmt01"):
        assert expect in g, g
    # the static INI reads back to the same hosts, groups and variables
    ini = tmp_path / "inventory.ini"
    r = subprocess.run([sys.executable, "-m", "dgxie", "inventory", "ansible", "--ini", "-o", str(ini)], env=env,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    from_ini = json.loads(run("-i", str(ini), "--list").stdout)
    assert from_ini["_meta"]["hostvars"] == inv["_meta"]["hostvars"]
    for group in ("kube_control_plane", "etcd", "kube_node", "slurm-master", "slurm-node"):
        assert sorted(from_ini.get(group, {}).get("hosts", [])) == sorted(inv[group]["hosts"]), group
    assert set(from_ini["slurm-cluster"]["children"]) == set(inv["slurm-cluster"]["children"])
    # the shipped script passes DGXIE_INVENTORY_ARGS through (DeepOps 23.08 names)
    old = subprocess.run([ANSIBLE_INVENTORY, "-i", str(script), "--list"], capture_output=True, text=True,
                         env=env | {"DGXIE_INVENTORY_ARGS": "--layout hyphenated"}, timeout=120, check=False)
    assert json.loads(old.stdout)["kube-master"]["hosts"] == ["mgmt01"]
