"""The inventory builders against DeepOps' own example inventories (pure, no I/O)."""

from __future__ import annotations

import ast
import re
import shlex

import pytest

from dgxie.handoff import ansible
from dgxie.handoff.records import NodeRecord
from tests.support.paths import SHARED

REF = SHARED / "reference" / "deepops"

NODES = [
    NodeRecord("mgmt01", "10.0.0.1", "k8s-control", "ready", ("kube_control_plane", "etcd")),
    NodeRecord("login01", "10.0.1.1", "slurm-controller", "ready", ("slurm-master",)),
    NodeRecord("gpu01", "10.0.2.1", "k8s-worker", "installed", ("kube_node",), ("rack1",),
               {"gpus": 8, "cpus": 224, "serial": "1234"}, {"ansible_user": "ubuntu", "custom": {"a": [1, 2]}}),
    NodeRecord("gpu02", None, "slurmd", "bootstrapping", ("slurm-node",)),
]


def sections(text: str) -> list[tuple[str, list[str]]]:
    """[(section header, entries)] of an INI inventory, comments dropped; hosts keep only their name."""
    out: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if line.startswith("["):
            out.append((line.strip("[]"), []))
        else:
            out[-1][1].append(line.split()[0])
    return out


@pytest.mark.parametrize(("layout", "ref"), [("head", "deepops-inventory.HEAD.example"),
                                            ("hyphenated", "deepops-inventory.23.08-hyphenated.example")])
def test_empty_inventory_has_exactly_deepops_sections(layout: ansible.Layout, ref: str) -> None:
    ours = sections(ansible.inventory_ini([], layout))
    theirs = sections((REF / ref).read_text())
    assert [h for h, _ in ours] == [h for h, _ in theirs]
    assert ours == theirs  # the :children entries match too (hosts are commented out in the example)


def test_hosts_land_in_their_groups_and_login_breaks_out() -> None:
    nodes = [*NODES, NodeRecord("login02", "10.0.1.2", "slurm-login", "ready", ("slurm-login",))]
    inv = ansible.inventory_list(nodes)
    assert inv["kube_control_plane"] == {"hosts": ["mgmt01"]}
    assert inv["etcd"] == {"hosts": ["mgmt01"]}
    assert inv["kube_node"] == {"hosts": ["gpu01"]}
    assert inv["k8s_cluster"] == {"hosts": [], "children": ["kube_control_plane", "kube_node"]}
    assert inv["slurm-node"] == {"hosts": ["gpu02"]}
    # a dedicated login node replaces the default `slurm-login:children slurm-master` (DeepOps' comment)
    assert inv["slurm-login"] == {"hosts": ["login02"]}
    assert inv["slurm-cache"] == {"hosts": [], "children": ["slurm-master"]}
    assert sorted(inv["all"]["hosts"]) == ["gpu01", "gpu02", "login01", "login02", "mgmt01"]


def test_hyphenated_layout_renames_even_head_spelled_role_groups() -> None:
    inv = ansible.inventory_list(NODES, "hyphenated")
    assert inv["kube-master"] == {"hosts": ["mgmt01"]}
    assert inv["kube-node"] == {"hosts": ["gpu01"]}
    assert inv["k8s-cluster"]["children"] == ["kube-master", "kube-node"]
    assert "kube_node" not in inv
    # and the other way round
    rec = NodeRecord("old01", "10.0.3.1", "k8s-worker", "ready", ("kube-node",))
    assert ansible.inventory_list([rec])["kube_node"] == {"hosts": ["old01"]}


def test_host_vars_carry_address_role_facts_and_node_vars() -> None:
    hv = ansible.inventory_list(NODES)["_meta"]["hostvars"]
    assert hv["gpu01"]["ansible_host"] == "10.0.2.1"
    assert hv["gpu01"]["dgxie_role"] == "k8s-worker"
    assert hv["gpu01"]["dgxie_gpu_count"] == 8
    assert hv["gpu01"]["dgxie_cpus"] == 224
    assert hv["gpu01"]["ansible_user"] == "ubuntu"
    assert hv["gpu01"]["dgxie_tags"] == ["rack1"]
    assert "ansible_host" not in hv["gpu02"]  # no ip: Ansible falls back to the name
    assert hv["gpu02"]["dgxie_gpu_count"] == 0
    assert ansible.inventory_host(NODES, "gpu01") == hv["gpu01"]
    assert ansible.inventory_host(NODES, "nosuch") == {}


def test_ini_host_vars_read_back_as_ansible_parses_them() -> None:
    ini = ansible.inventory_ini(NODES)
    line = next(ln for ln in ini.splitlines() if ln.startswith("gpu01 "))
    words = shlex.split(line)[1:]
    parsed = {}
    for w in words:
        k, _, v = w.partition("=")
        try:
            parsed[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            parsed[k] = v
    assert parsed == ansible.host_vars(NODES[2])


def test_duplicate_hostnames_are_refused() -> None:
    dup = [NODES[0], NodeRecord("mgmt01", "10.0.0.9", "k8s-worker", "ready", ("kube_node",))]
    with pytest.raises(AssertionError, match="mgmt01 appears twice"):
        ansible.inventory_list(dup)
    with pytest.raises(AssertionError):
        ansible.inventory_ini(dup)


def test_site_groups_are_appended_and_checked() -> None:
    rec = NodeRecord("nfs01", "10.0.4.1", "nfs", "ready", ("nfs_server",))
    assert ansible.inventory_list([rec])["nfs_server"] == {"hosts": ["nfs01"]}
    with pytest.raises(ValueError, match="not a valid Ansible group"):
        ansible.inventory_list([NodeRecord("x", None, "r", "ready", ("bad group",))])
    assert re.search(r"^\[nfs_server\]\nnfs01$", ansible.inventory_ini([rec]), re.M)


def test_failure_summary_and_redaction() -> None:
    from dgxie.handoff.bootstrap import redact, summary

    out = "PLAY [all]\nfatal: [gpu03]: FAILED! => {\"msg\": \"boom\"}\n\nPLAY RECAP\ngpu03 : ok=0 failed=1\n"
    assert summary(out) == 'fatal: [gpu03]: FAILED! => {"msg": "boom"}'
    assert summary("just one line\n\n") == "just one line" and summary("") == "no output"
    assert redact("token abcdef.0123 and abc", ["abcdef.0123", "abc"]) == "token [redacted] and abc"
