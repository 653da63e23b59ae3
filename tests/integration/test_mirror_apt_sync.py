"""APT mirror against real peers: a repository built with dpkg-deb + apt-ftparchive, signed with a
throwaway gpg key, served on 127.0.0.1; dgxie syncs it and a real apt-get uses dgxie."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dgxie.compose import build_context
from dgxie.config import Settings
from dgxie.context import Context
from dgxie.mirror import service
from dgxie.mirror.kind import mirror_dir
from tests.support.mirror_apt import World, apt_get, dgxie_http, world


@pytest.fixture
def up(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


def make(sqlite_url: str, data: Path, mirrors: list[dict[str, Any]]) -> Context:
    return build_context(Settings(database_url=sqlite_url, data_dir=data, mirrors=mirrors), migrate=False)


def deb_gets(up: World) -> list[str]:
    return [p for p, _ in up.handler.log if p.endswith(".deb")]


def test_sync_serve_apt_get_then_incremental(up: World, sqlite_url: str, tmp_path: Path) -> None:
    ctx = make(sqlite_url, tmp_path / "data", [up.mirror()])
    job = service.sync_now(ctx.sessions, ctx.site, "up", "test")
    assert job.status == "succeeded", job.error
    assert job.files_fetched == 4  # Packages, Packages.gz, 2 debs (InRelease is counted in bytes only)
    first = job.snapshot
    with dgxie_http(ctx) as base:
        url = f"{base}/mirror/apt/up"
        r = apt_get(tmp_path / "c1", url, up.keyring, "update")
        assert r.returncode == 0, r.stdout + r.stderr
        r = apt_get(tmp_path / "c1", url, up.keyring, "install", "--download-only", "world")
        assert r.returncode == 0, r.stdout + r.stderr
        got = sorted(p.name for p in (tmp_path / "c1/aptroot/cache/archives").glob("*.deb"))
        assert got == ["hello_1.0_amd64.deb", "world_1.0_amd64.deb"]
        # by-hash forced: apt asks dists/.../by-hash/SHA256/<hex> only
        r = apt_get(tmp_path / "c2", url, up.keyring, "update", by_hash=True)
        assert r.returncode == 0, r.stdout + r.stderr
        r = apt_get(tmp_path / "c2", url, up.keyring, "install", "--download-only", "world", by_hash=True)
        assert r.returncode == 0, r.stdout + r.stderr

        idx = f"{url}/dists/stable/main/binary-amd64"
        old_packages = hashlib.sha256(httpx.get(f"{idx}/Packages").content).hexdigest()

        # upstream gains a package: the next sync fetches only it and the new indexes
        up.add("extra", payload=5000)
        up.repo.publish()
        up.handler.log.clear()
        job = service.sync_now(ctx.sessions, ctx.site, "up", "test")
        assert job.status == "succeeded", job.error
        assert deb_gets(up) == ["/pool/main/e/extra_1.0_amd64.deb"]
        assert job.files_fetched == 3
        assert 5000 < job.bytes_fetched < 12000
        assert job.snapshot != first
        # the previous indexes stay reachable by hash (a client mid-update still gets them)
        assert httpx.get(f"{idx}/by-hash/SHA256/{old_packages}").status_code == 200
        assert hashlib.sha256(httpx.get(f"{idx}/Packages").content).hexdigest() != old_packages
        r = apt_get(tmp_path / "c1", url, up.keyring, "update")
        assert r.returncode == 0, r.stdout + r.stderr
        r = apt_get(tmp_path / "c1", url, up.keyring, "install", "--download-only", "extra")
        assert r.returncode == 0, r.stdout + r.stderr

        # a no-op re-sync fetches nothing but the signed Release and publishes nothing new
        up.handler.log.clear()
        job2 = service.sync_now(ctx.sessions, ctx.site, "up", "test")
        assert job2.status == "succeeded" and job2.snapshot == job.snapshot and job2.files_fetched == 0
        assert [p for p, _ in up.handler.log] == ["/dists/stable/InRelease"]
    snaps = sorted(p.name for p in (mirror_dir(tmp_path / "data", "apt", "up") / "snapshots").iterdir())
    assert snaps == sorted([first, job.snapshot])


def test_tampered_upstream_keeps_the_published_snapshot(up: World, sqlite_url: str, tmp_path: Path) -> None:
    ctx = make(sqlite_url, tmp_path / "data", [up.mirror()])
    good = service.sync_now(ctx.sessions, ctx.site, "up", "test")
    assert good.status == "succeeded", good.error
    root = mirror_dir(tmp_path / "data", "apt", "up")
    before = sorted(str(p.relative_to(root / "current/")) for p in (root / "current/").rglob("*"))

    # a swapped file: Packages promises one .deb, the server holds another
    deb = up.add("extra")
    up.repo.publish()
    other = up.add("extra2")
    (up.repo.root / "pool/main/e" / deb.name).write_bytes(other.read_bytes())
    job = service.sync_now(ctx.sessions, ctx.site, "up", "test")
    assert job.status == "failed" and "sha256 mismatch" in job.error

    # a bad signature: the Release text is altered after signing
    inrel = up.repo.root / "dists/stable/InRelease"
    inrel.write_text(inrel.read_text().replace("Suite: stable", "Suite: stab1e"))
    job = service.sync_now(ctx.sessions, ctx.site, "up", "test")
    assert job.status == "failed" and job.error == "bad signature"

    assert sorted(str(p.relative_to(root / "current/")) for p in (root / "current/").rglob("*")) == before
    assert [p.name for p in (root / "snapshots").iterdir()] == [good.snapshot]
    with dgxie_http(ctx) as base:
        r = apt_get(tmp_path / "c", f"{base}/mirror/apt/up", up.keyring, "update")
        assert r.returncode == 0, r.stdout + r.stderr
        r = apt_get(tmp_path / "c", f"{base}/mirror/apt/up", up.keyring, "install", "--download-only", "world")
        assert r.returncode == 0, r.stdout + r.stderr
        r = apt_get(tmp_path / "c", f"{base}/mirror/apt/up", up.keyring, "install", "--download-only", "extra")
        assert r.returncode != 0  # the old snapshot does not have it
    with ctx.sessions() as s:
        from dgxie.mirror import queries

        m = queries.get_mirror(s, ctx.site, "up")
        assert m.failures == 2 and m.current_snapshot == good.snapshot and m.last_error == "bad signature"


def test_upstream_by_hash_is_used(up: World, sqlite_url: str, tmp_path: Path) -> None:
    """Upstream announces Acquire-By-Hash: indexes are fetched by hash (the plain paths 404 here)."""
    up.repo.publish(by_hash=True)
    up.handler.fail.update({"/dists/stable/main/binary-amd64/Packages", "/dists/stable/main/binary-amd64/Packages.gz"})
    ctx = make(sqlite_url, tmp_path / "data", [up.mirror()])
    job = service.sync_now(ctx.sessions, ctx.site, "up", "test")
    assert job.status == "succeeded", job.error
    assert sum("/by-hash/SHA256/" in p for p, _ in up.handler.log) == 2


def test_readers_see_whole_snapshots_while_publishing(up: World, sqlite_url: str, tmp_path: Path) -> None:
    """A client reading InRelease and then the Packages it names by hash, in a loop, while three
    syncs publish new snapshots: every pair matches (old or new snapshot, never a mix)."""
    import threading

    from dgxie.mirror.apt import repository as apt

    ctx = make(sqlite_url, tmp_path / "data", [up.mirror()])
    assert service.sync_now(ctx.sessions, ctx.site, "up", "test").status == "succeeded"
    errors: list[str] = []
    checks = [0]
    stop = threading.Event()
    with dgxie_http(ctx) as base:
        url = f"{base}/mirror/apt/up/dists/stable"

        def reader() -> None:
            with httpx.Client() as c:
                while not stop.is_set() and checks[0] < 5000:
                    text = c.get(f"{url}/InRelease").text
                    body = text.split("\n\n", 1)[1].split("-----BEGIN PGP SIGNATURE", 1)[0]
                    ref = apt.parse_release(body).files["main/binary-amd64/Packages"]
                    r = c.get(f"{url}/main/binary-amd64/by-hash/SHA256/{ref.sha256}")
                    if r.status_code != 200 or hashlib.sha256(r.content).hexdigest() != ref.sha256:
                        errors.append(f"{r.status_code} for {ref.sha256}")
                    checks[0] += 1

        t = threading.Thread(target=reader)
        t.start()
        try:
            for i in range(3):
                up.add(f"new{i}")
                up.repo.publish()
                assert service.sync_now(ctx.sessions, ctx.site, "up", "test").status == "succeeded"
        finally:
            stop.set()
            t.join(timeout=30)
    assert errors == [] and checks[0] > 3
