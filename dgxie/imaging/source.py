"""The APT mirror a build bootstraps from, read from its published file tree on disk (no server).

A build pins the snapshot `current` points at when it starts (`snapshots/<id>/`, resolved once),
so a sync publishing the next snapshot meanwhile changes nothing for it. Its signing key is the
one APT on a node would use: dgxie's own `dgxie-archive-key.gpg` for a filtered mirror (its
indexes are re-signed, docs/mirrors.md), the configured upstream keyring for an unfiltered one.
Nothing is ever trusted without it (no `[trusted=yes]`).

`check_packages` refuses, before anything is bootstrapped, a package list the snapshot cannot
satisfy: every requested package, and every hard dependency (Pre-Depends, Depends: one
alternative of each group, by name or a provider) of them and of the base system mmdebstrap
installs (`Essential: yes`, `Priority: required`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dgxie.errors import Invalid
from dgxie.mirror.apt import repository as apt
from dgxie.mirror.apt import tree
from dgxie.mirror.kind import mirror_dir
from dgxie.sections import AnyMirrorConfig, AptMirrorConfig
from dgxie.validation import NAME_RE

KEY_FILE = "dgxie-archive-key.gpg"


@dataclass(frozen=True)
class Source:
    mirror: str
    snapshot: str
    tree: Path  # the snapshot's directory: dists/, pool/
    keyring: Path  # the key its Release is signed with
    components: tuple[str, ...]
    architectures: tuple[str, ...]
    epoch: int  # the snapshot's creation time (SOURCE_DATE_EPOCH of what is built from it)

    def url(self) -> str:
        return f"file://{self.tree}"


def open_source(data_dir: Path, mirror: str, mirrors: tuple[AnyMirrorConfig, ...]) -> Source:
    """The published snapshot of APT mirror `mirror` under `data_dir`; Invalid if there is none."""
    if not NAME_RE.match(mirror):
        raise Invalid(f"{mirror!r} is not a mirror name")
    root = mirror_dir(data_dir, "apt", mirror)
    snap = tree.current(root)
    if snap is None:
        raise Invalid(f"APT mirror {mirror} has no published snapshot (run `dgxie mirror sync {mirror}`)")
    where = Path(os.path.realpath(root / "snapshots" / snap))
    man = tree.load_manifest(root, snap)
    if man.meta.get("filtered"):
        keyring = where / KEY_FILE
    else:
        cfg = next((m for m in mirrors if m.name == mirror and isinstance(m, AptMirrorConfig)), None)
        if cfg is None:
            raise Invalid(f"APT mirror {mirror} is unfiltered and not in the configuration: its upstream keyring "
                          "is unknown")
        keyring = cfg.keyring
    if not keyring.is_file():
        raise Invalid(f"APT mirror {mirror}: signing key {keyring} is missing")
    try:
        epoch = int(datetime.fromisoformat(man.created_at).timestamp())
    except ValueError:
        epoch = int(where.stat().st_mtime)
    return Source(mirror=mirror, snapshot=snap, tree=where, keyring=keyring,
                  components=tuple(man.meta.get("components", ["main"])),
                  architectures=tuple(man.meta.get("architectures", ["amd64"])), epoch=epoch)


def packages_index(src: Source, suite: str, arch: str = "amd64") -> list[apt.Package]:
    """Every package the snapshot lists for `suite` and `arch` (plus `all`), every component."""
    if arch not in src.architectures:
        raise Invalid(f"APT mirror {src.mirror} does not carry architecture {arch}")
    suite_dir = src.tree / "dists" / suite
    if not suite_dir.is_dir():
        raise Invalid(f"APT mirror {src.mirror} has no suite {suite}")
    out: list[apt.Package] = []
    for comp in src.components:
        for a in (arch, "all"):
            d = suite_dir / comp / f"binary-{a}"
            for name in ("Packages", "Packages.xz", "Packages.gz", "Packages.bz2"):
                if (d / name).is_file():
                    data = apt.decompress(name, (d / name).read_bytes())
                    out += apt.parse_packages(data.decode("utf-8", errors="replace"))
                    break
    return out


def check_packages(src: Source, index: list[apt.Package], wanted: list[str], image: str) -> None:
    """Invalid, naming the first package the snapshot lacks (and what needs it), unless the
    snapshot satisfies `wanted` plus the base system with every hard dependency."""
    names = {p.name for p in index}
    provided = {v for p in index for v in p.provides}
    for name in wanted:
        if name not in names:
            raise Invalid(f"mirror {src.mirror} lacks package {name} (needed by image {image})")
    by_name = {p.name: p for p in index}
    base = sorted(apt.closure(index, ["?essential", "?priority(required)"]))
    for name in sorted(apt.closure(index, wanted)) + base:
        for group in by_name[name].depends:
            if not any(alt in names or alt in provided for alt in group):
                raise Invalid(f"mirror {src.mirror} lacks package {' | '.join(group)} (needed by {name} for image "
                              f"{image})")
