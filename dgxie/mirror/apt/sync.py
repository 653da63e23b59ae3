"""APT sync: signed Release -> verified indexes -> verified .debs, as a snapshot manifest (which
`apt.kind` then publishes as a file tree).

The order is what makes it safe: nothing is trusted before the Release signature is checked with
the configured keyring; every index is checked against the signed SHA256 list, every .deb against
its index. Only blobs the store lacks are downloaded. A filtered mirror gets new Packages files
and a Release re-signed with dgxie's own key (`signing.py`).
"""

from __future__ import annotations

import hashlib
import json
import posixpath

from dgxie.mirror.apt import repository as apt
from dgxie.mirror.apt import signing
from dgxie.mirror.apt.repository import AptError, FileRef, Package
from dgxie.mirror.fetch import FetchError, Wanted
from dgxie.mirror.kind import SyncContext
from dgxie.mirror.manifest import FileEntry, Manifest
from dgxie.sections import AptMirrorConfig


def _add(files: dict[str, FileEntry], path: str, ref: FileRef | FileEntry) -> None:
    files[path] = FileEntry(ref.sha256, ref.size)
    if "/by-hash/" not in path and not path.endswith("Release"):
        files[f"{posixpath.dirname(path)}/by-hash/SHA256/{ref.sha256}"] = FileEntry(ref.sha256, ref.size)


def _release(ctx: SyncContext, src: AptMirrorConfig, suite: str, files: dict[str, FileEntry]) -> apt.Release:
    """Fetch and verify InRelease (or Release + Release.gpg); record what was kept."""
    f = ctx.fetcher
    base = f"{src.url}/dists/{suite}"
    inrel = f.get_bytes(f"{base}/InRelease", missing_ok=True)
    if inrel is not None:
        text = apt.gpgv(src.keyring, inrel)
        files[f"dists/{suite}/InRelease"] = FileEntry(ctx.store.put_bytes(inrel), len(inrel))
    else:
        rel = f.get_bytes(f"{base}/Release", missing_ok=True)
        if rel is None:
            raise AptError(f"suite {suite!r} not found at {src.url} (no InRelease, no Release)")
        sig = f.get_bytes(f"{base}/Release.gpg", missing_ok=True)
        if sig is None:
            raise AptError(f"suite {suite!r} is unsigned (no InRelease, no Release.gpg); refusing it")
        text = apt.gpgv(src.keyring, rel, sig)
        files[f"dists/{suite}/Release"] = FileEntry(ctx.store.put_bytes(rel), len(rel))
        files[f"dists/{suite}/Release.gpg"] = FileEntry(ctx.store.put_bytes(sig), len(sig))
    release = apt.parse_release(text.decode("utf-8", errors="replace"))
    apt.check_valid_until(release)
    return release


def _indexes(ctx: SyncContext, src: AptMirrorConfig, suite: str, release: apt.Release,
             files: dict[str, FileEntry]) -> dict[str, list[Package]]:
    """Fetch every selected index (404 tolerated for a variant of an index that has another);
    return the parsed packages per `component/binary-arch/` directory."""
    got: dict[str, FileRef] = {}
    for ref in apt.select_indexes(release, src.components, src.architectures):
        d = posixpath.dirname(ref.path)
        urls = [f"{src.url}/dists/{suite}/{ref.path}"]
        if release.by_hash:  # by-hash first (immune to upstream updating mid-sync), then the plain path
            urls.insert(0, f"{src.url}/dists/{suite}/{d}/by-hash/SHA256/{ref.sha256}")
        if not _fetch_first(ctx, urls, ref):
            continue
        got[ref.path] = ref
        _add(files, f"dists/{suite}/{ref.path}", ref)
    out: dict[str, list[Package]] = {}
    for comp in src.components:
        for arch in [*src.architectures, "all"]:
            prefix = f"{comp}/binary-{arch}/"
            variants = [v for v in apt.packages_variants(release, prefix) if v.path in got]
            if not variants:
                if arch != "all" and apt.packages_variants(release, prefix):
                    raise AptError(f"dists/{suite}/{prefix}Packages: no variant listed in Release could be fetched")
                continue
            v = variants[0]
            data = apt.decompress(v.path, ctx.store.path(v.sha256).read_bytes())
            out[prefix] = apt.parse_packages(data.decode("utf-8", errors="replace"))
    return out


def _fetch_first(ctx: SyncContext, urls: list[str], ref: FileRef) -> bool:
    """Fetch `ref` from the first URL that has it; False if every one answers 404."""
    for url in urls:
        try:
            ctx.fetcher.fetch(Wanted(url, ref.sha256, ref.size))
            return True
        except FetchError as exc:
            if "HTTP 404" not in str(exc):
                raise
    return False


def _fingerprint(src: AptMirrorConfig, files: dict[str, FileEntry]) -> str:
    signed = {p: f.sha256 for p, f in files.items() if p.endswith(("InRelease", "/Release", "Release.gpg"))}
    blob = json.dumps({"signed": signed, "filter": src.filter, "c": src.components, "a": src.architectures},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def sync(src: AptMirrorConfig, ctx: SyncContext, previous: Manifest | None) -> Manifest:
    """The new snapshot's manifest (every blob in the store), or `previous` itself when upstream's
    signed Release, the selection and the filter are unchanged and every blob is still held."""
    files: dict[str, FileEntry] = {}
    ctx.progress.phase = "release"
    releases = {s: _release(ctx, src, s, files) for s in src.suites}
    fp = _fingerprint(src, files)
    if previous is not None and previous.meta.get("fingerprint") == fp and \
            all(ctx.store.has(d) for d in previous.digests()):
        ctx.progress.phase = "up to date"
        return previous
    ctx.progress.phase = "indexes"
    per_suite = {s: _indexes(ctx, src, s, r, files) for s, r in releases.items()}
    ctx.tick()
    if src.filter:
        keep = apt.closure([p for idx in per_suite.values() for ps in idx.values() for p in ps], src.filter)
        if not keep:
            raise AptError(f"filter {src.filter} matches no package in {src.url} {' '.join(src.suites)}")
        if ctx.box is None:
            raise AptError("a filtered mirror needs the site's secret box to keep its signing key")
        key = signing.ArchiveKey(ctx.root / "gnupg", ctx.box)
        for suite, idx in per_suite.items():
            per_suite[suite] = {d: [p for p in ps if p.name in keep] for d, ps in idx.items()}
            _resign(ctx, key, src, suite, releases[suite], per_suite[suite], files)
    pkgs: dict[str, Package] = {}
    for idx in per_suite.values():
        for ps in idx.values():
            for p in ps:
                other = pkgs.setdefault(p.filename, p)
                if other.sha256 != p.sha256:
                    raise AptError(f"{p.filename} listed with two different sha256 sums")
    wanted = [Wanted(f"{src.url}/{p.filename}", p.sha256, p.size) for p in pkgs.values()]
    ctx.progress.phase = "packages"
    c = ctx.fetcher.counters
    ctx.progress.files_total = c.files_done + len(wanted)
    ctx.progress.bytes_total = c.bytes_done + sum(p.size for p in pkgs.values())
    ctx.fetcher.fetch_many(wanted, on_tick=ctx.tick)
    for p in pkgs.values():
        files[p.filename] = FileEntry(p.sha256, p.size)
    _keep_previous_by_hash(ctx, previous, files)
    meta = {"upstream": src.url, "suites": list(src.suites), "components": list(src.components),
            "architectures": list(src.architectures), "packages": len(pkgs), "filtered": bool(src.filter),
            "fingerprint": fp}
    return Manifest(mirror=src.name, kind="apt", files=files, meta=meta)


def _keep_previous_by_hash(ctx: SyncContext, previous: Manifest | None, files: dict[str, FileEntry]) -> None:
    """Keep the previous snapshot's indexes reachable by hash, so a client that read the old
    InRelease just before the switch still gets matching indexes (as Debian's archive does)."""
    if previous is None:
        return
    for path, f in previous.files.items():
        if path.startswith("dists/") and "/by-hash/" not in path and not path.endswith(("Release", ".gpg")):
            bh = f"{posixpath.dirname(path)}/by-hash/SHA256/{f.sha256}"
            if bh not in files and ctx.store.has(f.sha256):
                files[bh] = f


def _resign(ctx: SyncContext, key: signing.ArchiveKey, src: AptMirrorConfig, suite: str, upstream: apt.Release,
            idx: dict[str, list[Package]], files: dict[str, FileEntry]) -> None:
    """Replace the suite's indexes with filtered Packages(.gz) and a Release signed by dgxie."""
    for p in [p for p in files if p.startswith(f"dists/{suite}/")]:
        del files[p]
    refs: list[FileRef] = []
    for d, ps in sorted(idx.items()):
        for name, data in signing.packages_files(ps):
            digest = ctx.store.put_bytes(data)
            ref = FileRef(d + name, len(data), digest)
            refs.append(ref)
            _add(files, f"dists/{suite}/{ref.path}", ref)
    release = signing.release_text(upstream.fields, suite, refs, src.components, src.architectures)
    for name, data in key.sign(release).items():
        files[f"dists/{suite}/{name}"] = FileEntry(ctx.store.put_bytes(data), len(data))
    pub = key.public_key()
    files["dgxie-archive-key.gpg"] = FileEntry(ctx.store.put_bytes(pub), len(pub))
