"""`Manifest`: a snapshot as `path -> sha256 + size` plus the kind's metadata.

It is the kind-agnostic shape of an air-gap bundle (bundle.py: every kind exports its snapshots as
manifests and adopts them back) and, for `apt`, the snapshot file tree's own index
(`manifests/<id>.json`). Paths must stay inside the snapshot (`check_path`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass
class Manifest:
    mirror: str
    kind: str
    snapshot: str = ""
    created_at: str = ""
    files: dict[str, FileEntry] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files.values())

    def digests(self) -> set[str]:
        return {f.sha256 for f in self.files.values()}

    def to_json(self) -> dict[str, Any]:
        return {"mirror": self.mirror, "kind": self.kind, "snapshot": self.snapshot, "created_at": self.created_at,
                "meta": self.meta, "files": {p: [f.sha256, f.size] for p, f in sorted(self.files.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        files = {str(p): FileEntry(str(v[0]), int(v[1])) for p, v in data["files"].items()}
        return cls(mirror=str(data["mirror"]), kind=str(data["kind"]), snapshot=str(data.get("snapshot", "")),
                   created_at=str(data.get("created_at", "")), files=files, meta=dict(data.get("meta", {})))

    def dump(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        return cls.from_json(json.loads(path.read_text()))


def check_path(rel: str) -> str:
    """A manifest path must stay inside the snapshot: relative, no `..`, no empty parts."""
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"unsafe path in manifest: {rel!r}")
    return rel
