"""Ansible inventory in DeepOps' layout (pure functions over `NodeRecord`s).

Two layouts, matching DeepOps' `config.example/inventory`:

- ``head``: ``kube_control_plane``, ``etcd``, ``kube_node``, ``k8s_cluster:children`` (DeepOps >= 23.x
  with Kubespray's underscore names);
- ``hyphenated``: ``kube-master``, ``etcd``, ``kube-node``, ``k8s-cluster:children`` (DeepOps 23.08 and
  earlier).

The Slurm groups are the same in both. Groups that DeepOps defines as ``:children`` of
``slurm-master`` (``slurm-cache``, ``slurm-metric``, ``slurm-login``) or of ``slurm-node``
(``slurm-nfs-client``) become plain host groups as soon as a role puts a node in them, as the
comment in DeepOps' example says. Output: the dynamic-inventory JSON (``--list``, ``--host``) and
a static INI file.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from dgxie.handoff.records import FACT_KEYS, NodeRecord

Layout = Literal["head", "hyphenated"]
LAYOUTS: tuple[Layout, ...] = ("head", "hyphenated")

_HYPHENATED = {"kube_control_plane": "kube-master", "kube_node": "kube-node", "k8s_cluster": "k8s-cluster"}
_HEAD = {v: k for k, v in _HYPHENATED.items()}

# (group, default children when no node is in it directly), in the order of DeepOps' example file.
_K8S = (("kube_control_plane", ()), ("etcd", ()), ("kube_node", ()),
        ("k8s_cluster", ("kube_control_plane", "kube_node")))
_SLURM = (("slurm-master", ()), ("slurm-nfs", ()), ("slurm-node", ()), ("slurm-cache", ("slurm-master",)),
          ("slurm-nfs-client", ("slurm-node",)), ("slurm-metric", ("slurm-master",)),
          ("slurm-login", ("slurm-master",)),
          ("slurm-cluster", ("slurm-master", "slurm-node", "slurm-cache", "slurm-nfs", "slurm-metric",
                             "slurm-login")))
_ALWAYS_CHILDREN = {"k8s_cluster", "slurm-cluster"}
_GROUP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def group_name(name: str, layout: Layout) -> str:
    """A group name in `layout` (role configs may use either spelling)."""
    return _HYPHENATED.get(name, name) if layout == "hyphenated" else _HEAD.get(name, name)


def _layout_groups(layout: Layout) -> list[tuple[str, tuple[str, ...]]]:
    return [(group_name(g, layout), tuple(group_name(c, layout) for c in kids)) for g, kids in _K8S + _SLURM]


def check_unique(records: Iterable[NodeRecord]) -> None:
    """Two nodes with one hostname cannot exist (the database forbids it); refuse if they do."""
    seen: set[str] = set()
    for r in records:
        if r.hostname in seen:
            raise AssertionError(f"inventory: hostname {r.hostname} appears twice")
        seen.add(r.hostname)


def host_vars(record: NodeRecord) -> dict[str, Any]:
    """`ansible_host`, dgxie's role/state/tags, the hardware facts, then the node's own vars (which win)."""
    out: dict[str, Any] = {}
    if record.ip:
        out["ansible_host"] = record.ip
    out["dgxie_role"] = record.role
    out["dgxie_state"] = record.state
    out["dgxie_tags"] = list(record.tags)
    gpus = record.fact_int("gpus")
    out["dgxie_gpu_count"] = gpus if gpus is not None else 0
    for key in FACT_KEYS:
        if key in record.facts:
            out[f"dgxie_{key}"] = record.facts[key]
    out.update(record.vars)
    return out


def group_members(records: Sequence[NodeRecord], layout: Layout) -> dict[str, list[str]]:
    """Group -> sorted hostnames, for every group any node's role puts it in."""
    members: dict[str, list[str]] = {}
    for r in records:
        for g in r.groups:
            members.setdefault(group_name(g, layout), []).append(r.hostname)
    return {g: sorted(set(h)) for g, h in members.items()}


def build_groups(records: Sequence[NodeRecord], layout: Layout = "head") -> dict[str, dict[str, list[str]]]:
    """Every group of the layout (even empty ones), then site-defined groups: {name: {hosts, children}}."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    check_unique(records)
    members = group_members(records, layout)
    groups: dict[str, dict[str, list[str]]] = {}
    for name, kids in _layout_groups(layout):
        hosts = members.pop(name, [])
        if name in {group_name(g, layout) for g in _ALWAYS_CHILDREN}:
            groups[name] = {"hosts": hosts, "children": list(kids)}
        elif hosts or not kids:
            groups[name] = {"hosts": hosts, "children": []}
        else:
            groups[name] = {"hosts": [], "children": list(kids)}
    for name in sorted(members):
        if not _GROUP_RE.match(name):
            raise ValueError(f"group {name!r} is not a valid Ansible group name")
        groups[name] = {"hosts": members[name], "children": []}
    return groups


def inventory_list(records: Sequence[NodeRecord], layout: Layout = "head") -> dict[str, Any]:
    """The JSON an Ansible inventory script prints for `--list` (with `_meta.hostvars`)."""
    groups = build_groups(records, layout)
    out: dict[str, Any] = {"_meta": {"hostvars": {r.hostname: host_vars(r) for r in
                                                   sorted(records, key=lambda r: r.hostname)}}}
    out["all"] = {"hosts": sorted(r.hostname for r in records), "children": ["ungrouped", *groups], "vars": {}}
    for name, g in groups.items():
        entry: dict[str, Any] = {"hosts": g["hosts"]}
        if g["children"]:
            entry["children"] = g["children"]
        out[name] = entry
    return out


def inventory_host(records: Sequence[NodeRecord], hostname: str) -> dict[str, Any]:
    """`--host H`: that host's variables, or {} for an unknown host (Ansible's convention)."""
    check_unique(records)
    for r in records:
        if r.hostname == hostname:
            return host_vars(r)
    return {}


def _ini_value(value: Any) -> str:
    """A host variable as Ansible's INI parser reads it back (literal_eval of a shell-quoted word)."""
    if isinstance(value, str):
        try:
            ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return shlex.quote(value)
        return shlex.quote(repr(value))  # "1234" must stay a string, not become an int
    if value is None:
        return "None"
    if isinstance(value, bool | int | float):
        return repr(value)
    return shlex.quote(repr(json.loads(json.dumps(value))))


def inventory_ini(records: Sequence[NodeRecord], layout: Layout = "head") -> str:
    """A static inventory file in the layout of DeepOps' `config.example/inventory`."""
    groups = build_groups(records, layout)
    lines = ["# Generated by dgxie (`dgxie inventory ansible --ini`); edit the nodes in dgxie, not here.", "",
             "[all]"]
    for r in sorted(records, key=lambda r: r.hostname):
        hv = " ".join(f"{k}={_ini_value(v)}" for k, v in host_vars(r).items())
        lines.append(f"{r.hostname} {hv}".rstrip())
    for name, g in groups.items():
        lines.append("")
        if g["children"] and not g["hosts"]:
            lines.append(f"[{name}:children]")
            lines.extend(g["children"])
        else:
            lines.append(f"[{name}]")
            lines.extend(g["hosts"])
            if g["children"]:
                lines += ["", f"[{name}:children]", *g["children"]]
    lines += ["", "[all:vars]", ""]
    return "\n".join(lines)
