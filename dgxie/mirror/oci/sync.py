"""Sync one OCI mirror: copy the selected tags' indexes, manifests and blobs into the shared
`BlobStore`, then publish a snapshot atomically (`snapshot.publish_snapshot`).

Order of work per repository: list tags; filter by include/exclude; fetch every candidate's
manifest (and, for an index, the manifests of the mirrored platforms) plus its image config, all
in memory and digest-verified; order by `created` and keep the newest N (`rules`); then store
manifests and configs and stream the layers the store lacks (a partial layer left by a killed sync
is resumed with a Range request). Only when every repository is complete is the snapshot written;
any error before that leaves the published snapshot as it was.

An index is mirrored byte for byte (its digest is what clients pin), so with a `platforms` filter
the index still lists the other platforms, whose manifests dgxie then answers MANIFEST_UNKNOWN.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from dgxie.blobstore import BlobStore
from dgxie.errors import Invalid, NotFound
from dgxie.mirror.oci.auth import load_credentials
from dgxie.mirror.oci.client import INDEX_TYPES, CorruptContent, Fetched, RegistryClient
from dgxie.mirror.oci.rules import newest_first, parse_created, platform_matches, select_tags
from dgxie.mirror.oci.snapshot import OciSnapshot, RepoSnapshot, publish_snapshot
from dgxie.sections import OciMirrorConfig

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class SyncEvent:
    """Progress of a sync. kinds: `repo` (started; count = tags kept), `plan` (count/nbytes = blobs
    still to download), `bytes` (nbytes just received), `blob` (ref = digest downloaded),
    `skip` (ref = digest already in the store)."""

    kind: Literal["repo", "plan", "bytes", "blob", "skip"]
    repo: str
    ref: str = ""
    nbytes: int = 0
    count: int = 0


OciProgress = Callable[[SyncEvent], None]


@dataclass
class _Image:
    """One tag as planned: its top manifest, the image manifests under it, and their configs."""

    tag: str
    top: Fetched
    manifests: list[Fetched] = field(default_factory=list)  # top first, then children
    configs: dict[str, Fetched] = field(default_factory=dict)
    layers: dict[str, int] = field(default_factory=dict)  # digest -> size
    created: datetime | None = None


def _check_digest(d: Any, what: str) -> str:
    if not isinstance(d, str) or not _DIGEST.match(d):
        raise CorruptContent(f"{what}: unsupported or malformed digest {d!r} (sha256 only)")
    return d


def _plan_image(client: RegistryClient, repo: str, tag: str, platforms: list[str]) -> _Image | None:
    """Fetch (in memory, verified) a tag's manifests and configs; None when no platform is wanted."""
    top = client.get_manifest(repo, tag)
    img = _Image(tag=tag, top=top, manifests=[top])
    todo: list[tuple[Fetched, int]] = [(top, 0)]
    while todo:
        fetched, depth = todo.pop(0)
        doc = fetched.json()
        if fetched.media_type in INDEX_TYPES or "manifests" in doc:
            if depth >= 2:
                raise CorruptContent(f"{repo}:{tag}: indexes nested too deep")
            for entry in doc.get("manifests") or []:
                if platform_matches(entry.get("platform"), platforms):
                    child = client.get_manifest(repo, _check_digest(entry.get("digest"), f"{repo}:{tag}"))
                    img.manifests.append(child)
                    todo.append((child, depth + 1))
            continue
        cfg_desc = doc.get("config") or {}
        cfg_digest = _check_digest(cfg_desc.get("digest"), f"{repo}:{tag} config")
        config = client.get_small_blob(repo, cfg_digest)
        img.configs[cfg_digest] = config
        if fetched is top and platforms:
            c = config.json()
            plat = {"os": c.get("os"), "architecture": c.get("architecture"), "variant": c.get("variant")}
            if not platform_matches(plat, platforms):
                return None
        if img.created is None:
            img.created = parse_created(config.json().get("created"))
        for layer in doc.get("layers") or []:
            if layer.get("urls"):  # non-distributable (foreign) layer: clients fetch it from its URLs
                continue
            img.layers[_check_digest(layer.get("digest"), f"{repo}:{tag} layer")] = int(layer.get("size") or 0)
    if len(img.manifests) == 1 and img.top.media_type in INDEX_TYPES:
        return None  # an index with none of the wanted platforms
    return img


def _sync_repo(client: RegistryClient, cfg: OciMirrorConfig, store: BlobStore, repo: str,
               progress: OciProgress) -> RepoSnapshot:
    try:
        upstream_tags = client.list_tags(repo)
    except NotFound:
        raise NotFound(f"mirror {cfg.name}: repository {repo} not found at {cfg.registry}") from None
    candidates = select_tags(repo, upstream_tags, cfg.tags.include, cfg.tags.exclude)
    planned = {t: img for t in candidates if (img := _plan_image(client, repo, t, cfg.platforms)) is not None}
    if not planned:
        raise Invalid(f"mirror {cfg.name}: no tag of {repo} among {', '.join(candidates)} has a platform "
                      f"in {cfg.platforms}")
    order = newest_first({t: img.created for t, img in planned.items()})
    keep = order[: cfg.tags.keep_newest] if cfg.tags.keep_newest else order
    progress(SyncEvent("repo", repo, count=len(keep)))
    out = RepoSnapshot()
    layers: dict[str, int] = {}
    for tag in keep:
        img = planned[tag]
        out.tags[tag] = img.top.digest
        for m in img.manifests:
            store.put_bytes(m.data)
            out.manifests[m.digest] = (m.media_type, len(m.data))
        for d, c in img.configs.items():
            store.put_bytes(c.data)
            out.blobs[d] = len(c.data)
        layers.update(img.layers)
    missing = {d: s for d, s in layers.items() if not store.has(d)}
    progress(SyncEvent("plan", repo, count=len(missing), nbytes=sum(missing.values())))
    for d, size in sorted(layers.items()):
        if d not in missing:
            progress(SyncEvent("skip", repo, ref=d, nbytes=size))
        out.blobs[d] = size

    def fetch(item: tuple[str, int]) -> None:
        d, size = item
        client.fetch_blob(repo, d, store, size=size or None,
                          on_bytes=lambda n: progress(SyncEvent("bytes", repo, nbytes=n)))
        progress(SyncEvent("blob", repo, ref=d, nbytes=size))

    # Largest first, a few at a time; the first error cancels what has not started (partials stay).
    with ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="oci-blob") as pool:
        futures = [pool.submit(fetch, item) for item in sorted(missing.items(), key=lambda kv: -kv[1])]
        try:
            for f in futures:
                f.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return out


def sync_oci(cfg: OciMirrorConfig, store: BlobStore, state_dir: Path, progress: OciProgress | None = None, *,
             transport: httpx.BaseTransport | None = None, backoff: float = 0.5) -> OciSnapshot:
    """Mirror `cfg` into `store` and publish its snapshot under `state_dir` (keeping
    `cfg.keep_snapshots`); return the snapshot. The caller makes it the only sync of this mirror
    (the mirror service holds the mirror's lock).

    Raises `Unauthorized` (bad credentials), `NotFound` (unknown repository), `Invalid` (no tag
    matches), `CorruptContent` (a digest mismatch), `Unavailable` (network); on any of them the
    published snapshot is unchanged.
    """
    lock = threading.Lock()

    def emit(ev: SyncEvent) -> None:  # blobs download in threads; callers see one event at a time
        if progress is not None:
            with lock:
                progress(ev)

    creds = load_credentials(cfg.username, cfg.password_file)
    verify: bool | str = False if cfg.insecure else (str(cfg.ca_file) if cfg.ca_file else True)
    with RegistryClient(cfg.registry, credentials=creds, verify=verify, timeout=cfg.timeout, retries=cfg.retries,
                        backoff=backoff, transport=transport) as client:
        snap = OciSnapshot(name=cfg.name, registry=cfg.registry)
        for repo in cfg.repositories:
            snap.repositories[repo] = _sync_repo(client, cfg, store, repo, emit)
        publish_snapshot(state_dir, snap, keep=cfg.keep_snapshots)
    return snap
