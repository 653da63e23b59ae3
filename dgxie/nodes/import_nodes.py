"""The node side of an import: what a row changes on an enrolled node, and rows that collide.

Pure apart from reading the node's row: no query, no write. A row states some fields
(`model_fields_set` of its `NodeCreate`); only those are compared, so a field set by hand and
absent from the file is left alone. The BMC password is compared after decryption and never
appears in what is returned as a change's description.
"""

from __future__ import annotations

from typing import Any

from dgxie.models import Node
from dgxie.nodes.schemas import MACHINE_FACTS, BmcIn, NodeCreate, NodeUpdate
from dgxie.site import Site


def _bmc_changes(site: Site, node: Node, bmc: BmcIn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fields = bmc.model_fields_set
    if "url" in fields and bmc.url != node.bmc_url:
        out["url"] = bmc.url
    if "username" in fields and (bmc.username or None) != (node.bmc_username or None):
        out["username"] = bmc.username
    if "password" in fields:
        want = bmc.password.get_secret_value() if bmc.password is not None else None
        have = site.box.open(node.bmc_password_enc) if node.bmc_password_enc is not None else None
        if want != have or out:  # a new URL or user drops a stored password unless it comes again
            out["password"] = want
    return out


def node_changes(site: Site, node: Node, row: NodeCreate) -> NodeUpdate | None:
    """The update that makes `node` say what `row` says, or None when it already does."""
    fields = row.model_fields_set
    have: dict[str, Any] = {
        "hostname": node.hostname, "ip": node.ip, "profile": node.profile.name if node.profile else None,
        "role": node.role, "tags": sorted(node.tags), "vars": dict(node.vars),
        "facts": {k: v for k, v in node.facts.items() if k not in MACHINE_FACTS},
    }
    want: dict[str, Any] = {"hostname": row.hostname, "ip": row.ip, "profile": row.profile, "role": row.role,
                            "tags": sorted(row.tags), "vars": row.vars, "facts": row.facts}
    update: dict[str, Any] = {k: want[k] for k in want if k in fields and want[k] != have[k]}
    if "mac" in fields and row.mac != node.mac:
        update["mac"] = row.mac
    if "interfaces" in fields and {i.mac for i in row.interfaces} != {i.mac for i in node.interfaces[1:]}:
        update["interfaces"] = [i.model_dump() for i in row.interfaces]
    if row.bmc is not None and (bmc := _bmc_changes(site, node, row.bmc)):
        update["bmc"] = bmc
    return NodeUpdate.model_validate(update) if update else None


def unique_in_file(rows: list[tuple[str, NodeCreate]]) -> list[tuple[str, str]]:
    """(row, error) for each row that repeats an earlier row's MAC, hostname or IP (across all the files)."""
    seen: dict[tuple[str, str], str] = {}
    errors = []
    for where, row in rows:
        keys = [("MAC", m) for m in [row.mac, *[i.mac for i in row.interfaces]]] + [("hostname", row.hostname)]
        keys += [("IP", row.ip)] if row.ip else []
        for key in keys:
            if key in seen:
                errors.append((where, f"{where} ({row.hostname}): {key[0]} {key[1]} is also in {seen[key]}"))
                break
        for key in keys:
            seen.setdefault(key, where)
    return errors
