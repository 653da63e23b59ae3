"""A real, filtered dgxie APT mirror of the Debian archive this machine's APT uses, for the image
and agent builds (tests/integration/test_imaging_build.py, the e2e deploy test).

The mirror is synced once with dgxie's own sync (signature checked with the Debian archive
keyring) into a cache that survives test sessions: `$DGXIE_TEST_CACHE` or `/var/cache/dgxie-test`.
A rerun whose filter is unchanged and whose snapshot is younger than
`$DGXIE_TEST_MIRROR_MAX_AGE` seconds (default 7 days) downloads nothing; an older one re-syncs,
which fetches only what changed (the store is incremental).

The filter is what the image and agent recipes install plus `?essential` and
`?priority(required)` (what mmdebstrap's minbase variant installs), with the dependency closure.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import REPO

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
NAME = "debian"


def cache_dir() -> Path:
    return Path(os.environ.get("DGXIE_TEST_CACHE", "/var/cache/dgxie-test"))


def host_debian_source() -> tuple[str, str]:
    """(archive URL, suite) of the first Debian `deb` source of this machine's APT that is a
    release suite (not -updates, -security, -backports), from sources.list.d/*.sources (deb822)
    or sources.list."""
    entries: list[tuple[str, list[str]]] = []
    d = Path("/etc/apt/sources.list.d")
    for f in sorted(d.glob("*.sources")) if d.is_dir() else []:
        for para in re.split(r"\n\s*\n", f.read_text()):
            fields: dict[str, str] = {}
            for line in para.splitlines():
                if ":" in line and not line.startswith(("#", " ", "\t")):
                    k, _, v = line.partition(":")
                    fields[k.strip().lower()] = v.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                for uri in fields.get("uris", "").split():
                    entries.append((uri, fields.get("suites", "").split()))
    legacy = Path("/etc/apt/sources.list")
    for line in legacy.read_text().splitlines() if legacy.is_file() else []:
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            entries.append((words[1], [words[2]]))
    for uri, suites in entries:
        for suite in suites:
            if "/" not in suite and not re.search(r"-(updates|security|backports|proposed-updates)$", suite):
                return uri.rstrip("/"), suite
    raise AssertionError("this machine's APT has no Debian release suite to mirror")


def recipe_packages(recipe: str) -> list[str]:
    data: dict[str, Any] = yaml.safe_load((REPO / "images" / recipe / "recipe.yaml").read_text())
    return list(data["packages"])


@dataclass(frozen=True)
class DebianMirror:
    """The synced mirror: a dgxie data dir holding it, and the config entry that declares it."""

    data_dir: Path
    name: str
    suite: str
    config: dict[str, Any]

    @property
    def root(self) -> Path:
        return self.data_dir / "mirrors" / "apt" / self.name

    def link_into(self, data_dir: Path) -> None:
        """Make the mirror visible in another (per-test) data dir, read-only use: a symlink to
        its directory (the tree's files are hardlinks into the cache's store)."""
        d = data_dir / "mirrors" / "apt"
        d.mkdir(parents=True, exist_ok=True)
        (d / self.name).symlink_to(self.root)


def mirror_config(url: str, suite: str) -> dict[str, Any]:
    pkgs = sorted(set(recipe_packages("debian")) | set(recipe_packages("agent")))
    return {"name": NAME, "kind": "apt", "url": url, "suites": [suite], "components": ["main"],
            "architectures": ["amd64"], "keyring": str(KEYRING),
            "filter": ["?essential", "?priority(required)", *pkgs], "keep_snapshots": 2}


def sync_debian_mirror() -> DebianMirror:
    """Sync (or reuse) the cached mirror; one process at a time (a lock file in the cache)."""
    from dgxie.compose import build_context
    from dgxie.config import Settings
    from dgxie.mirror import service
    from dgxie.mirror.apt import tree

    url, suite = host_debian_source()
    cfg = mirror_config(url, suite)
    base = cache_dir() / "debian-mirror"
    base.mkdir(parents=True, exist_ok=True)
    data_dir = base / "data"
    mirror = DebianMirror(data_dir, NAME, suite, cfg)
    stamp = base / "synced.json"
    max_age = float(os.environ.get("DGXIE_TEST_MIRROR_MAX_AGE", 7 * 86400))
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            seen = json.loads(stamp.read_text())
        except (OSError, ValueError):
            seen = {}
        if seen.get("config") == cfg and time.time() - float(seen.get("at", 0)) < max_age \
                and tree.current(mirror.root) is not None:
            return mirror
        settings = Settings(database_url=f"sqlite:///{base / 'dgxie.db'}", data_dir=data_dir, mirrors=[cfg])
        ctx = build_context(settings)
        try:
            job = service.sync_now(ctx.sessions, ctx.site, NAME, trigger="test")
        finally:
            ctx.engine.dispose()
        assert job.status == "succeeded", f"syncing the Debian mirror failed: {job.error}"
        stamp.write_text(json.dumps({"config": cfg, "at": time.time(), "snapshot": job.snapshot}))
    return mirror
