"""Air-gap transfer: export published snapshots to a self-describing bundle, import it elsewhere.

Bundle layout (kind-agnostic: every kind exports a snapshot as a `Manifest` and adopts one back,
`MirrorKind.export` / `adopt`):
`blobs/sha256/<hex>` (each blob once, named by its sha256), then `dgxie-bundle.json` (format,
snapshots' manifests, the blob list, and each mirror's `base` snapshot for an incremental
bundle), and `dgxie-bundle.json.sha256`. The JSON is written last, so a bundle without it is
incomplete. Import verifies every blob while copying it into the store, checks every snapshot is
complete, and only then publishes, all mirrors or none.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from dgxie.blobstore import DigestMismatch
from dgxie.errors import Invalid, NotFound
from dgxie.mirror.kind import MirrorKind, store_for
from dgxie.mirror.kinds import KINDS, kind_for
from dgxie.mirror.manifest import Manifest, check_path
from dgxie.mirror.records import drop_pruned, kind_of, record_current, root_of
from dgxie.mirror.service import mirror_lock
from dgxie.models.types import utcnow
from dgxie.site import Site

FORMAT = "dgxie-mirror-bundle"
INDEX = "dgxie-bundle.json"


@dataclass
class BundleSummary:
    mirrors: list[str]
    snapshots: list[str]
    blobs: int
    bytes: int


def _exports_file(root: Path) -> Path:
    return root / "exports.json"


def _base_for(kind: MirrorKind[Any], root: Path, name: str, since: str | None, incremental: bool) -> Manifest | None:
    kept = kind.history(root)
    if since is not None:
        if since not in kept:
            raise Invalid(f"no snapshot {since!r} to export from (see `dgxie mirror snapshots`)")
        return kind.export(root, name, since)
    if incremental and _exports_file(root).exists():
        for sid in reversed(json.loads(_exports_file(root).read_text())):
            if sid in kept:
                return kind.export(root, name, sid)
    return None


def export(s: Session, site: Site, names: list[str], dest: Path, *, since: str | None = None,
           incremental: bool = False) -> BundleSummary:
    if since is not None and len(names) != 1:
        raise Invalid("--since names one snapshot, so it takes exactly one mirror")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise Invalid(f"{dest} exists and is not an empty directory")
    store = store_for(site.data_dir)
    mans, bases, blobs = [], {}, {}
    for name in names:
        kind, _ = kind_of(s, site, name)
        root = root_of(site, kind.name, name)
        cur = kind.current(root)
        if cur is None:
            raise Invalid(f"mirror {name} has no published snapshot to export")
        man = kind.export(root, name, cur)
        base = _base_for(kind, root, name, since, incremental)
        have = base.digests() if base else set()
        bases[name] = base.snapshot if base else None
        mans.append(man)
        for f in man.files.values():
            if f.sha256 not in have:
                blobs[f.sha256] = f.size
    bdir = dest / "blobs" / "sha256"
    bdir.mkdir(parents=True, exist_ok=True)
    for digest in sorted(blobs):
        src, dst = store.path(digest), bdir / digest
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    index = {"format": FORMAT, "version": 1, "created_at": utcnow().isoformat(), "base": bases,
             "snapshots": [m.to_json() for m in mans], "blobs": blobs}
    data = json.dumps(index, separators=(",", ":")).encode()
    (dest / INDEX).write_bytes(data)
    (dest / f"{INDEX}.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  {INDEX}\n")
    for m in mans:
        ef = _exports_file(root_of(site, m.kind, m.mirror))
        done = json.loads(ef.read_text()) if ef.exists() else []
        ef.write_text(json.dumps([*done, m.snapshot][-50:]))
    return BundleSummary([m.mirror for m in mans], [m.snapshot for m in mans], len(blobs), sum(blobs.values()))


def _read_index(src: Path) -> dict[str, Any]:
    try:
        data = (src / INDEX).read_bytes()
        want = (src / f"{INDEX}.sha256").read_text().split()[0]
    except (OSError, IndexError):
        raise Invalid(f"{src} is not a complete dgxie mirror bundle (no {INDEX} and its .sha256)") from None
    if hashlib.sha256(data).hexdigest() != want:
        raise Invalid(f"{src}/{INDEX}: checksum mismatch, the bundle is damaged")
    index: dict[str, Any] = json.loads(data)
    if index.get("format") != FORMAT or index.get("version") != 1:
        raise Invalid(f"{src}: not a dgxie mirror bundle version 1")
    return index


def _read_chunks(p: Path) -> Iterator[bytes]:
    with p.open("rb") as f:
        while block := f.read(1 << 20):
            yield block


def import_(s: Session, site: Site, src: Path) -> BundleSummary:
    index = _read_index(src)
    store = store_for(site.data_dir)
    total = 0
    for digest, size in index["blobs"].items():
        p = src / "blobs" / "sha256" / digest
        if not p.is_file() or p.stat().st_size != size:
            raise Invalid(f"bundle blob {digest} is missing or has the wrong size")
        if not store.has(digest):
            try:
                store.write(digest, _read_chunks(p), resume=False, keep_partial=False)
            except DigestMismatch:
                raise Invalid(f"bundle blob {digest} is corrupt (sha256 mismatch)") from None
        total += size
    mans = [Manifest.from_json(m) for m in index["snapshots"]]
    for m in mans:
        lacking = [p for p, f in m.files.items() if not store.has(f.sha256)]
        if lacking:
            base = index["base"].get(m.mirror)
            raise Invalid(f"mirror {m.mirror}: {len(lacking)} files missing (e.g. {lacking[0]}); this bundle is "
                          f"incremental from snapshot {base}: import that one first")
        try:
            for p in m.files:
                check_path(p)
        except ValueError as exc:
            raise Invalid(f"mirror {m.mirror}: {exc}") from None
        if m.kind not in KINDS:
            raise Invalid(f"mirror {m.mirror}: unknown kind {m.kind!r} in the bundle")
    for m in mans:
        try:
            kind, spec = kind_of(s, site, m.mirror)
        except NotFound:
            kind, spec = kind_for(m.kind), None
        if kind.name != m.kind:
            raise Invalid(f"mirror {m.mirror} is {kind.name} here but {m.kind} in the bundle")
        root = root_of(site, m.kind, m.mirror)
        with mirror_lock(root, m.mirror):
            kind.adopt(root, m, store, spec.keep_snapshots if spec else 3)
        st = record_current(s, site, m.kind, m.mirror, "import")
        st.last_success_at = utcnow()
        drop_pruned(s, site, m.kind, m.mirror)
    return BundleSummary([m.mirror for m in mans], [m.snapshot for m in mans], len(index["blobs"]), total)
