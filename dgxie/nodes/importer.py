"""Read node inventories from other tools (pure parsing, no database).

Formats: CSV (header row; columns hostname, mac, ip, profile, role, tags `a;b`, bmc_url,
bmc_username, bmc_password), YAML (a list of node objects, or `{nodes: [...]}`), DGXIE's
`machines.json` (MAC-regex boot entries; they become dgxie images and profiles, see
`dgxie.nodes.dgxie_machines`) and dnsmasq `dhcp-host=` lines
(`dhcp-host=MAC[,MAC...][,set:tag][,IP][,HOSTNAME][,LEASE]`).

A bad row does not stop the parse: every bad row is named in `ImportPlan.errors`, so one run
reports them all (`dgxie.nodes.importing` then applies nothing while any error is left).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from dgxie.errors import Invalid
from dgxie.nodes.dgxie_machines import DEFAULT_HTTP_PORT, Machine, parse_machine, shadowed
from dgxie.nodes.macs import canonical_mac
from dgxie.nodes.schemas import NodeCreate
from dgxie.validation import parse


@dataclass
class ImportPlan:
    """What files ask for: nodes to enroll and DGXIE machines to boot, each with where it came
    from; the rows that could not be read (`errors`) and what an operator should know (`warnings`)."""

    nodes: list[tuple[str, NodeCreate]] = field(default_factory=list)
    machines: list[tuple[str, Machine]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: ImportPlan) -> None:
        self.nodes += other.nodes
        self.machines += other.machines
        self.errors += other.errors
        self.warnings += other.warnings


def _node(plan: ImportPlan, where: str, row: dict[str, Any]) -> None:
    label = f"{where} ({row.get('hostname') or row.get('mac') or '?'}): "
    try:
        plan.nodes.append((where, parse(NodeCreate, row, where=label)))
    except Invalid as exc:
        plan.errors.append(exc.detail)


def parse_csv(text: str, name: str) -> ImportPlan:
    plan = ImportPlan()
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "hostname" not in reader.fieldnames or "mac" not in reader.fieldnames:
        raise Invalid(f"{name}: a CSV import needs a header row with at least hostname and mac")
    for i, raw in enumerate(reader, start=2):
        if None in raw:
            plan.errors.append(f"{name} row {i}: more fields than the header has")
            continue
        row: dict[str, Any] = {k: v for k, v in raw.items() if v not in (None, "") and not k.startswith("bmc_")}
        if "tags" in row:
            row["tags"] = [t for t in re.split(r"[;\s]+", row["tags"]) if t]
        bmc = {k.removeprefix("bmc_"): v for k, v in raw.items() if k.startswith("bmc_") and v}
        if bmc:
            row["bmc"] = bmc
        _node(plan, f"{name} row {i}", row)
    return plan


def parse_yaml(text: str, name: str) -> ImportPlan:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise Invalid(f"{name}: not valid YAML" + (f" (line {mark.line + 1})" if mark else "")) from None
    if isinstance(data, dict) and "nodes" in data:
        data = data["nodes"]
    if not isinstance(data, list):
        raise Invalid(f"{name}: expected a list of nodes (or a mapping with a 'nodes' list)")
    plan = ImportPlan()
    for i, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            plan.errors.append(f"{name} entry {i}: expected a mapping")
            continue
        _node(plan, f"{name} entry {i}", row)
    return plan


def parse_machines_json(data: dict[str, Any], name: str, http_port: str = DEFAULT_HTTP_PORT) -> ImportPlan:
    """DGXIE's machines.json: each entry a boot image and profile, chosen by a MAC regex."""
    plan = ImportPlan()
    slugs: dict[str, str] = {}
    for key, entry in data.items():
        where = f"{name} entry {key!r}"
        try:
            m = parse_machine(key, entry, http_port)
        except ValueError as exc:
            plan.errors.append(f"{where}: {exc}")
            continue
        if m.slug in slugs:
            plan.errors.append(f"{where}: its name {m.slug!r} is also entry {slugs[m.slug]!r}'s")
            continue
        slugs[m.slug] = key
        plan.machines.append((where, m))
    plan.warnings += [f"{name} {w}" for w in shadowed([m for _, m in plan.machines])]
    return plan


_LEASE = re.compile(r"^(\d+[smhdw]?|infinite)$")


def parse_dhcp_host(line: str) -> dict[str, Any] | None:
    """One dnsmasq `dhcp-host=` line as a node row, or None for a line to skip."""
    body = line.split("=", 1)[1].strip()
    fields = [f.strip() for f in body.split(",") if f.strip()]
    macs: list[str] = []
    row: dict[str, Any] = {}
    for f in fields:
        if f == "ignore":
            return None
        if f.startswith(("set:", "tag:", "id:", "net:")) or _LEASE.match(f):
            continue
        if re.fullmatch(r"([0-9A-Fa-f*]{1,2}[:-]){2,}[0-9A-Fa-f*]{1,2}", f):
            macs.append(canonical_mac(f))  # raises ValueError for a short or wildcard MAC
            continue
        try:
            row["ip"] = str(ipaddress.IPv4Address(f))
            continue
        except ValueError:
            pass
        if f.startswith("[") or ("." in f and f.replace(".", "").isdigit()):
            raise ValueError(f"{f!r} is neither an IPv4 address nor a hostname")
        row["hostname"] = f
    if not macs:
        raise ValueError("no MAC address (dgxie enrolls nodes by MAC)")
    row["mac"] = macs[0]
    row["interfaces"] = [{"mac": m} for m in macs[1:]]
    row.setdefault("hostname", "node-" + macs[0].replace(":", ""))
    return row


def parse_dnsmasq(text: str, name: str) -> ImportPlan:
    plan = ImportPlan()
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("dhcp-host="):
            continue
        where = f"{name} line {lineno}"
        try:
            row = parse_dhcp_host(stripped)
        except ValueError as exc:
            plan.errors.append(f"{where}: {exc}")
            continue
        if row is not None:
            _node(plan, where, row)
    return plan


def parse_file(name: str, text: str, *, http_port: str = DEFAULT_HTTP_PORT) -> ImportPlan:
    """Pick the format by extension and content. A file dgxie cannot read at all raises Invalid;
    bad rows are listed in the plan's `errors`, each naming its row. `http_port` is DGXIE's
    HTTP_PORT (from its env file), which machines.json's `$HTTP_PORT` stands for."""
    lower = name.lower()
    if lower.endswith(".csv"):
        return parse_csv(text, name)
    if lower.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Invalid(f"{name}: not valid JSON (line {exc.lineno})") from None
        if isinstance(data, dict) and "nodes" not in data and any(isinstance(v, dict) and "kernel" in v
                                                                    for v in data.values()):
            return parse_machines_json(data, name, http_port)
        return parse_yaml(text, name)  # a JSON list of nodes is also YAML
    if lower.endswith((".yaml", ".yml")):
        return parse_yaml(text, name)
    if "dhcp-host=" in text or lower.endswith((".conf", ".conf.example")):
        return parse_dnsmasq(text, name)
    raise Invalid(f"{name}: unknown format (use .csv, .yaml, .json, or a dnsmasq file with dhcp-host= lines)")
