"""APT repository protocol: signed Release files, indexes, Packages, dependency closure.

Pure parsing and decisions plus the `gpgv` call; no database, no configuration. Formats: Debian
Policy 5.1 (deb822 control files), the "Debian Repository Format" wiki page (Release, by-hash),
RFC 4880 (OpenPGP signatures, checked by gpgv --status-fd, see GnuPG doc/DETAILS).
"""

from __future__ import annotations

import fnmatch
import gzip
import lzma
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath


class AptError(Exception):
    """An upstream repository is unusable: bad signature, missing suite, hash mismatch..."""


@dataclass(frozen=True)
class FileRef:
    """A file named by a signed index: its path relative to the index's base, size, sha256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Release:
    fields: dict[str, str]
    files: dict[str, FileRef]

    @property
    def by_hash(self) -> bool:
        return self.fields.get("acquire-by-hash", "no").lower() == "yes"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    arch: str
    filename: str
    size: int
    sha256: str
    depends: tuple[tuple[str, ...], ...] = ()  # Pre-Depends then Depends; each group's alternatives
    provides: tuple[str, ...] = ()
    essential: bool = False  # `Essential: yes`
    priority: str = ""  # `Priority:` (required, important, standard, optional, extra), lower case
    stanza: str = field(default="", compare=False, repr=False)


def paragraphs(text: str) -> Iterator[tuple[dict[str, str], str]]:
    """deb822 paragraphs as ({lower-case field: value}, raw text); continuation lines kept."""
    for raw in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        if not raw.strip():
            continue
        out: dict[str, str] = {}
        key = ""
        for line in raw.split("\n"):
            if not line or line.startswith("#"):
                continue
            if line[0] in " \t" and key:
                out[key] += "\n" + line.strip()
            else:
                k, sep, v = line.partition(":")
                if not sep:
                    raise AptError(f"malformed control line {line[:60]!r}")
                key = k.strip().lower()
                out[key] = v.strip()
        yield out, raw.strip("\n")


def safe_relpath(path: str) -> str:
    """Refuse absolute paths and `..`: an index must not point outside the mirror."""
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or not p.parts or path != str(p):
        raise AptError(f"unsafe path in index: {path!r}")
    return path


def parse_release(text: str) -> Release:
    fields, _ = next(paragraphs(text), ({}, ""))
    files: dict[str, FileRef] = {}
    for line in fields.get("sha256", "").splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        digest, size, path = parts
        files[safe_relpath(path)] = FileRef(path, int(size), digest.lower())
    if not files:
        raise AptError("Release has no SHA256 file list")
    return Release(fields, files)


def check_valid_until(release: Release, now: datetime | None = None) -> None:
    value = release.fields.get("valid-until")
    if value:
        until = parsedate_to_datetime(value)
        if (now or datetime.now(UTC)) > until:
            raise AptError(f"Release expired (Valid-Until {value})")


def _keyring_file(keyring: Path, tmp: Path) -> Path:
    """gpgv wants a binary keyring; dearmor an ASCII-armored one (.asc) first."""
    data = keyring.read_bytes()
    if not data.lstrip().startswith(b"-----BEGIN PGP"):
        return keyring.resolve()
    out = tmp / "keyring.gpg"
    subprocess.run(["gpg", "--batch", "--yes", "--dearmor", "--output", str(out)], input=data,
                   check=True, capture_output=True)
    return out


def gpgv(keyring: Path, signed: bytes, detached: bytes | None = None) -> bytes:
    """Verify `signed` (clearsigned, or with a `detached` signature) and return the signed text.

    Only a good signature by an unexpired, unrevoked key in `keyring` passes (GnuPG DETAILS:
    VALIDSIG present; EXPSIG/EXPKEYSIG/REVKEYSIG/BADSIG/ERRSIG/NO_PUBKEY absent).
    """
    if not keyring.is_file():
        raise AptError(f"keyring {keyring} does not exist")
    with tempfile.TemporaryDirectory(prefix="dgxie-gpgv-") as tmpd:
        tmp = Path(tmpd)
        kr = _keyring_file(keyring, tmp)
        out = tmp / "out"
        cmd = ["gpgv", "--status-fd", "1", "--homedir", str(tmp), "--keyring", str(kr)]
        if detached is None:
            (tmp / "in").write_bytes(signed)
            cmd += ["--output", str(out), str(tmp / "in")]
        else:
            (tmp / "sig").write_bytes(detached)
            (tmp / "in").write_bytes(signed)
            cmd += [str(tmp / "sig"), str(tmp / "in")]
        res = subprocess.run(cmd, capture_output=True, timeout=60)
        status = res.stdout.decode(errors="replace")
        codes = {w[1] for line in status.splitlines() if len(w := line.split()) > 1 and w[0] == "[GNUPG:]"}
        for bad, why in (("EXPKEYSIG", "signed by an expired key"), ("EXPSIG", "signature expired"),
                         ("REVKEYSIG", "signed by a revoked key"), ("BADSIG", "bad signature"),
                         ("NO_PUBKEY", "signed by a key not in the keyring"),
                         ("NODATA", "not signed"), ("ERRSIG", "signature cannot be checked")):
            if bad in codes:
                raise AptError(why)
        if res.returncode != 0 or "VALIDSIG" not in codes or "GOODSIG" not in codes:
            raise AptError("signature not valid")
        return out.read_bytes() if detached is None else signed


def decompress(path: str, data: bytes) -> bytes:
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".xz") or path.endswith(".lzma"):
        return lzma.decompress(data)
    if path.endswith(".bz2"):
        import bz2

        return bz2.decompress(data)
    return data


def index_prefixes(components: Iterable[str], architectures: Iterable[str]) -> list[str]:
    archs = [*architectures, "all"]
    return [f"{c}/binary-{a}/" for c in components for a in archs] + [f"{c}/i18n/" for c in components]


def select_indexes(release: Release, components: list[str], architectures: list[str]) -> list[FileRef]:
    """The Release entries to mirror for these components/architectures; every one must exist."""
    prefixes = index_prefixes(components, architectures)
    chosen = [f for p, f in release.files.items() if any(p.startswith(x) for x in prefixes)]
    for c in components:
        for a in architectures:
            if not any(p.startswith(f"{c}/binary-{a}/Packages") for p in release.files):
                raise AptError(f"{c}/binary-{a} is not in the Release file")
    return sorted(chosen, key=lambda f: f.path)


def packages_variants(release: Release, prefix: str) -> list[FileRef]:
    """Packages, Packages.xz, Packages.gz... under `prefix`, uncompressed first."""
    order = {"": 0, ".xz": 1, ".gz": 2, ".bz2": 3, ".lzma": 4}
    out = [f for p, f in release.files.items() if p.startswith(prefix + "Packages")
           and p[len(prefix) + 8:] in order]
    return sorted(out, key=lambda f: order[f.path[len(prefix) + 8:]])


_DEP = re.compile(r"^\s*([a-z0-9][a-z0-9+.-]*)")


def _relation(value: str) -> tuple[tuple[str, ...], ...]:
    groups = []
    for group in value.split(","):
        alts = tuple(m.group(1) for alt in group.split("|") if (m := _DEP.match(alt.strip().split(":")[0])))
        if alts:
            groups.append(alts)
    return tuple(groups)


def parse_packages(text: str) -> list[Package]:
    out = []
    for f, raw in paragraphs(text):
        try:
            name, filename = f["package"], safe_relpath(f["filename"])
            pkg = Package(name=name, version=f.get("version", ""), arch=f.get("architecture", ""),
                          filename=filename, size=int(f["size"]), sha256=f["sha256"].lower(),
                          depends=_relation(f.get("pre-depends", "")) + _relation(f.get("depends", "")),
                          provides=tuple(a for g in _relation(f.get("provides", "")) for a in g),
                          essential=f.get("essential", "").lower() == "yes",
                          priority=f.get("priority", "").lower(), stanza=raw)
        except KeyError as exc:
            raise AptError(f"Packages entry {f.get('package', '?')!r} lacks {exc.args[0]}") from None
        out.append(pkg)
    return out


PRIORITIES = ("required", "important", "standard", "optional", "extra")
_TERM = re.compile(r"^\?(essential|priority\(([a-z]+)\))$")


def check_filter_term(term: str) -> str:
    """A filter term is a package name or fnmatch pattern, or one of the apt-pattern-like terms
    `?essential` (`Essential: yes`) and `?priority(P)` (`Priority: P`, P one of `PRIORITIES`).
    Returns the term; AptError names an unknown `?` term."""
    if term.startswith("?"):
        m = _TERM.match(term)
        if m is None or (m.group(2) is not None and m.group(2) not in PRIORITIES):
            raise AptError(f"unknown filter term {term!r} (use ?essential or ?priority({'|'.join(PRIORITIES)}))")
    return term


def matches(p: Package, term: str) -> bool:
    """Whether package `p` is selected by one filter term (see `check_filter_term`)."""
    if not term.startswith("?"):
        return fnmatch.fnmatchcase(p.name, term)
    check_filter_term(term)
    if term == "?essential":
        return p.essential
    return p.priority == term[len("?priority("):-1]


def closure(packages: list[Package], patterns: list[str]) -> set[str]:
    """Names matching `patterns` (`matches`: fnmatch, `?essential`, `?priority(P)`) plus everything
    they depend on (Pre-Depends and Depends), transitively.

    Every alternative of an `a | b` dependency that the repository holds is kept, and a virtual
    package pulls in all its providers, so apt can resolve whichever it picks.
    """
    for term in patterns:
        check_filter_term(term)
    by_name: dict[str, list[Package]] = {}
    providers: dict[str, set[str]] = {}
    for p in packages:
        by_name.setdefault(p.name, []).append(p)
        for v in p.provides:
            providers.setdefault(v, set()).add(p.name)
    todo = sorted({p.name for p in packages if any(matches(p, t) for t in patterns)})
    keep: set[str] = set()
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        for p in by_name.get(name, []):
            for group in p.depends:
                for alt in group:
                    for target in ([alt] if alt in by_name else []) + sorted(providers.get(alt, ())):
                        if target not in keep:
                            todo.append(target)
    return keep
