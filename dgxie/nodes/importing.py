"""Apply an import plan to the inventory, idempotently, in the caller's transaction.

What is new is created, what differs is updated, what is the same is left alone and reported
`unchanged`: importing the same files twice changes nothing the second time. A file owns the
fields it states, nothing else (a role or var set by hand on an imported profile stays).

Order: DGXIE machines (each an image, then its profile), then nodes. A node row without a
profile gets the first profile whose var `mac_match` re.matches its MAC, in creation order,
which is machines.json's order (DGXIE's choice; `catalog.profiles.profile_for_mac`). Every
problem is collected in `Outcome.errors`, none stops the run; the caller rolls back unless there
are none, and for a dry run. Image files from DGXIE's HTTP root are only hashed unless `store`
(then `Outcome.added` lists the blobs this run added, for the caller to remove on a roll back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dgxie.blobstore import BlobStore
from dgxie.boot.decide import EXTERNAL_TEMPLATE
from dgxie.catalog import images as catalog_images
from dgxie.catalog.profiles import create_profile, profile_for_mac, update_profile
from dgxie.catalog.schemas import ImageIn, ProfileIn, ProfileUpdate
from dgxie.errors import DgxieError
from dgxie.models import Image, Interface, Node, Profile
from dgxie.nodes import bulk, bulk_checks
from dgxie.nodes.bulk import Row
from dgxie.nodes.dgxie_machines import Machine
from dgxie.nodes.import_nodes import node_changes, unique_in_file
from dgxie.nodes.importer import ImportPlan
from dgxie.nodes.service import update_node
from dgxie.site import Site
from dgxie.validation import parse


@dataclass(frozen=True)
class Change:
    kind: str  # image | profile | node
    name: str
    action: str  # create | update | unchanged
    detail: str = ""


@dataclass
class Outcome:
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)


@dataclass(frozen=True)
class Sources:
    """Where a DGXIE entry's localhost files come from: DGXIE's HTTP root on disk (laid out as
    its /www: the DGX ISO under iso/, dgx.seed), or DGXIE's server itself, fetched on first use."""

    files_dir: Path | None = None
    proxy: str | None = None


def _file_entry(ref_local: str, role: str, sources: Sources, store: BlobStore | None,
                out: Outcome) -> dict[str, Any] | str:
    """An image `files` entry for a file under DGXIE's HTTP root, or what is missing."""
    if sources.files_dir is not None:
        root = sources.files_dir.resolve()
        path = (root / ref_local).resolve()
        if path.is_relative_to(root) and path.is_file():
            try:
                if store is not None:
                    digest, new = store.store_file(path)
                    if new:
                        out.added.append(digest)
                else:
                    digest = BlobStore.digest_file(path)
            except OSError as exc:
                return f"{path}: {exc.strerror}"
            return {"sha256": digest, "size": path.stat().st_size, "role": role}
        if sources.proxy is None:
            return f"{ref_local}: no such file under {sources.files_dir}"
    if sources.proxy is not None:
        return {"url": f"{sources.proxy.rstrip('/')}/{ref_local}", "role": role}
    return f"{ref_local} is on DGXIE's own HTTP server: give --files DIR (its /www tree) or --proxy URL"


def _same_files(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Equal for an import: a url entry by its url (dgxie pins a sha256 on first fetch), a stored one by sha256."""
    if set(old) != set(new):
        return False
    for name, n in new.items():
        o = old[name] if isinstance(old[name], dict) else {}
        key = "url" if "url" in n else "sha256"
        if (o.get(key), o.get("role")) != (n.get(key), n.get("role")):
            return False
    return True


def _machine(session: Session, site: Site, where: str, m: Machine, sources: Sources, store: BlobStore | None,
             out: Outcome, actor: str) -> None:
    files: dict[str, Any] = {}
    missing = []
    for ref in m.files:
        entry = {"url": ref.url, "role": ref.role} if ref.local is None else \
            _file_entry(ref.local, ref.role, sources, store, out)
        if isinstance(entry, str):
            missing.append(entry)
        else:
            files[ref.served] = entry
    if missing:
        out.errors += [f"{where}: {what}" for what in missing]
        return
    prof = session.scalar(select(Profile).where(Profile.name == m.slug))
    img = session.scalar(select(Image).where(Image.name == m.slug))
    if (prof is not None and prof.source != "import") or (img is not None and prof is None):
        out.errors.append(f"{where}: {'profile' if prof is not None else 'image'} {m.slug!r} exists and did not "
                          "come from an import; rename the entry or delete it first")
        return
    initrd = m.initrd
    data = parse(ImageIn, {"name": m.slug, "os": "other", "kernel": m.kernel.served,
                           "initrd": initrd.served if initrd else "", "cmdline": m.cmdline, "files": files},
                 where=f"image {m.slug}: ")
    if img is not None and (img.kernel, img.initrd, img.cmdline, img.os) == (data.kernel, data.initrd, data.cmdline,
                                                                            data.os) \
            and _same_files(dict(img.files), files):
        out.changes.append(Change("image", m.slug, "unchanged"))
    else:
        catalog_images.put_image(session, data, actor=actor, reason=f"image {m.slug} imported from DGXIE {where}")
        remote = sorted({str(f["url"]) for f in files.values() if "url" in f})
        out.changes.append(Change("image", m.slug, "create" if img is None else "update",
                                  "fetched on first use: " + ", ".join(remote) if remote else "files stored"))
    pvars = {"mac_match": m.mac_match}
    if prof is None:
        create_profile(session, site, parse(ProfileIn, {"name": m.slug, "image": m.slug, "template": EXTERNAL_TEMPLATE,
                                                        "description": m.message, "vars": pvars},
                                            where=f"profile {m.slug}: "), actor=actor, source="import")
        out.changes.append(Change("profile", m.slug, "create", f"mac_match {m.mac_match}"))
    elif (prof.image.name if prof.image else None, prof.template, prof.description, prof.vars.get("mac_match")) \
            == (m.slug, EXTERNAL_TEMPLATE, m.message, m.mac_match):
        out.changes.append(Change("profile", m.slug, "unchanged"))
    else:
        update_profile(session, site, prof, parse(ProfileUpdate, {"image": m.slug, "template": EXTERNAL_TEMPLATE,
                                                                  "description": m.message,
                                                                  "vars": {**prof.vars, **pvars}},
                                                  where=f"profile {m.slug}: "), actor=actor)
        out.changes.append(Change("profile", m.slug, "update", f"mac_match {m.mac_match}"))


def apply(session: Session, site: Site, plan: ImportPlan, *, data_dir: Path, sources: Sources, store: bool,
          actor: str) -> Outcome:
    """Apply `plan` (see the module's docstring); never raises for a bad row, lists it instead."""
    out = Outcome(warnings=list(plan.warnings), errors=list(plan.errors))
    blobs = catalog_images.blob_store(data_dir) if store else None
    for where, m in plan.machines:
        try:
            _machine(session, site, where, m, sources, blobs, out, actor)
        except DgxieError as exc:
            out.errors.append(f"{where}: {exc.detail}")
    dup = unique_in_file(plan.nodes)
    out.errors += [line for _, line in dup]
    repeated = {where for where, _ in dup}
    existing = _nodes_by_mac(session, [data.mac for _, data in plan.nodes])
    new: list[Row] = []
    for where, data in plan.nodes:
        node = existing.get(data.mac)
        if node is None:
            if where not in repeated:
                new.append(Row(f"{where} ({data.hostname})", data))
            continue
        try:
            if "profile" not in data.model_fields_set and node.profile is None \
                    and (match := profile_for_mac(session, data.mac)) is not None:
                data = data.model_copy(update={"profile": match.name})
                data.model_fields_set.add("profile")
            update = node_changes(site, node, data)
            if update is None:
                out.changes.append(Change("node", node.hostname, "unchanged"))
            else:
                update_node(session, site, node, update, actor=actor)
                out.changes.append(Change("node", node.hostname, "update",
                                          ", ".join(sorted(update.model_fields_set))))
        except DgxieError as exc:
            out.errors.append(f"{where} ({data.hostname}): {exc.detail}")
    if new:
        found = bulk.profiles(session, new)
        problems = [p.line for p in bulk.problems(session, site, new, found)]
        if problems or out.errors:  # nothing is written anyway: list every problem, create nothing
            out.errors += problems
        else:
            for made in bulk.create_nodes(session, site, new, actor=actor, checked=True, found=found):
                out.changes.append(Change("node", made.hostname, "create",
                                          f"profile {made.profile}" if made.profile else ""))
    return out


def _nodes_by_mac(session: Session, macs: list[str]) -> dict[str, Node]:
    """The enrolled node holding each of `macs` (any of its interfaces): Core queries for the
    MACs (`bulk_checks.among`), then the ORM loads only the nodes found (none, for a file of new nodes)."""
    iface = Interface.__table__
    conn = session.connection()
    held: dict[str, int] = {}
    for cond in bulk_checks.among(conn, iface.c.mac, macs):
        held.update((mac, node_id) for mac, node_id in conn.execute(select(iface.c.mac, iface.c.node_id).where(cond)))
    nodes: dict[int, Node] = {}
    for cond in bulk_checks.among(conn, Node.__table__.c.id, sorted(set(held.values()))):
        nodes.update((n.id, n) for n in session.scalars(select(Node).where(cond)))
    return {mac: nodes[node_id] for mac, node_id in held.items()}
