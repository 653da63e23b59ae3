"""Bad input for the APT mirror: each a clear error, nothing published half-way, nothing lost.

Real peers throughout (gpg keys, apt-ftparchive repository, loopback HTTP with Range); the
fault injection (a 404 for one path, a connection dropped mid-file) is done by the test's own
stdlib HTTP server.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dgxie.mirror import service
from dgxie.mirror.kind import mirror_dir, store_for
from tests.integration.test_mirror_apt_sync import make
from tests.support.mirror_apt import World, make_key, world


@pytest.fixture
def up(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


def sync(ctx, name: str = "up"):  # type: ignore[no-untyped-def]
    return service.sync_now(ctx.sessions, ctx.site, name, "test")


def published(tmp: Path, name: str = "up") -> list[str]:
    snaps = mirror_dir(tmp / "data", "apt", name) / "snapshots"
    return sorted(p.name for p in snaps.iterdir()) if snaps.exists() else []


def test_signature_problems(up: World, sqlite_url: str, tmp_path: Path) -> None:
    other = make_key(tmp_path / "other-gnupg", "Other <other@example.org>").export(tmp_path / "other.gpg")
    ctx = make(sqlite_url, tmp_path / "data", [
        up.mirror("wrongkey", keyring=str(other)),
        up.mirror("nokeyring", keyring=str(tmp_path / "nope.gpg")),
        up.mirror("nosuite", suites=["sid"]),
        up.mirror("nocomp", components=["contrib"]),
    ])
    assert sync(ctx, "wrongkey").error == "signed by a key not in the keyring"
    assert "keyring" in sync(ctx, "nokeyring").error and "does not exist" in sync(ctx, "nokeyring").error
    assert sync(ctx, "nosuite").error == "suite 'sid' not found at " + up.url + " (no InRelease, no Release)"
    assert sync(ctx, "nocomp").error == "contrib/binary-amd64 is not in the Release file"

    # unsigned: no InRelease, no Release.gpg
    up.repo.publish(sign=False)
    ctx2 = make(sqlite_url, tmp_path / "data", [up.mirror()])
    assert "unsigned" in sync(ctx2).error
    # Release + detached Release.gpg only (no InRelease) is fine
    up.repo.publish(inrelease=False)
    assert sync(ctx2).status == "succeeded"
    for n in ("wrongkey", "nokeyring", "nosuite", "nocomp"):
        assert published(tmp_path, n) == []


def test_expired_key(up: World, sqlite_url: str, tmp_path: Path) -> None:
    """A key made (faked clock) two years ago that expired after a day signs the Release."""
    home = tmp_path / "old-gnupg"
    home.mkdir(mode=0o700)
    subprocess.run(["gpg", "--batch", "--homedir", str(home), "--faked-system-time", "20240101T000000",
                    "--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key", "Old <old@example.org>",
                    "ed25519", "sign", "1d"], check=True, capture_output=True)
    from tests.support.mirror_apt import GpgKey

    up.repo.key = GpgKey(home, "Old <old@example.org>")
    up.repo.publish(faked_time="20240101T120000")
    kr = up.repo.key.export(tmp_path / "old.gpg")
    ctx = make(sqlite_url, tmp_path / "data", [up.mirror(keyring=str(kr))])
    assert sync(ctx).error == "signed by an expired key"
    assert published(tmp_path) == []


def test_404_mid_sync_then_recover(up: World, sqlite_url: str, tmp_path: Path) -> None:
    ctx = make(sqlite_url, tmp_path / "data", [up.mirror()])
    up.handler.fail.add("/pool/main/w/world_1.0_amd64.deb")
    job = sync(ctx)
    assert job.status == "failed" and job.error.endswith("world_1.0_amd64.deb: HTTP 404")
    assert published(tmp_path) == []
    assert not (mirror_dir(tmp_path / "data", "apt", "up") / "current").exists()
    hello = up.repo.root / "pool/main/h/hello_1.0_amd64.deb"
    kept = store_for(tmp_path / "data").has(hashlib.sha256(hello.read_bytes()).hexdigest())
    up.handler.fail.clear()
    up.handler.log.clear()
    job = sync(ctx)
    assert job.status == "succeeded"
    # what the failed run stored (hello, if it was in flight) is not fetched again
    want = ["/pool/main/w/world_1.0_amd64.deb"] + ([] if kept else ["/pool/main/h/hello_1.0_amd64.deb"])
    assert sorted(p for p, _ in up.handler.log if p.endswith(".deb")) == sorted(want)


def test_dropped_connection_resumes_with_range(up: World, sqlite_url: str, tmp_path: Path) -> None:
    big = up.add("big", payload=300_000)
    up.repo.publish()
    path = "/pool/main/b/" + big.name
    up.handler.truncate[path] = 100_000
    ctx = make(sqlite_url, tmp_path / "data", [up.mirror()])
    job = sync(ctx)
    assert job.status == "failed"
    store = store_for(tmp_path / "data")
    partial = list((store.root / "partial").iterdir())
    assert len(partial) == 1 and partial[0].stat().st_size == 100_000
    del up.handler.truncate[path]
    up.handler.log.clear()
    job = sync(ctx)
    assert job.status == "succeeded", job.error
    assert (path, "bytes=100000-") in up.handler.log
    assert job.bytes_fetched < big.stat().st_size  # only the rest was transferred (+ small indexes)
    assert list((store.root / "partial").iterdir()) == []


def test_killed_sync_resumes(up: World, sqlite_url: str, tmp_path: Path) -> None:
    """`dgxie mirror sync` killed (SIGKILL) mid-download; the next run resumes the partial file."""
    import os
    import signal
    import sys
    import time

    import yaml

    big = up.add("big", payload=3_000_000)
    up.repo.publish()
    path = "/pool/main/b/" + big.name
    up.handler.stall[path] = 1_000_000  # the server sends 1 MB, then hangs: the client is killed mid-file
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": sqlite_url, "data_dir": str(tmp_path / "data"),
                                   "mirrors": [up.mirror()]}))
    env = dict(os.environ, DGXIE_CONFIG=str(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "dgxie", "mirror", "sync", "up", "-q"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = tmp_path / "data/store/partial" / hashlib.sha256(big.read_bytes()).hexdigest()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if partial.exists() and partial.stat().st_size >= 900_000:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sync should still be waiting for the rest of the file"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    have = partial.stat().st_size
    assert 900_000 <= have <= 1_000_000
    del up.handler.stall[path]
    up.handler.log.clear()
    res = subprocess.run([sys.executable, "-m", "dgxie", "mirror", "sync", "up", "-q"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (path, f"bytes={have}-") in up.handler.log
    assert published(tmp_path) != []


def test_disk_full_keeps_published_snapshot(up: World, sqlite_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "mirror-apt-tmpfs", str(data)], check=True)
    try:
        ctx = make(sqlite_url, data, [up.mirror()])
        good = sync(ctx)
        assert good.status == "succeeded", good.error
        up.add("huge", payload=2_000_000)
        up.repo.publish()
        job = sync(ctx)
        assert job.status == "failed" and "disk full" in job.error
        assert published(tmp_path) == [good.snapshot]
        root = mirror_dir(data, "apt", "up")
        assert (root / "current/pool/main/w/world_1.0_amd64.deb").is_file()
        ctx.engine.dispose()
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)
        shutil.rmtree(data, ignore_errors=True)


def test_filter_matching_nothing(up: World, sqlite_url: str, tmp_path: Path) -> None:
    ctx = make(sqlite_url, tmp_path / "data", [up.mirror(filter=["nvidia-*"])])
    job = sync(ctx)
    assert job.status == "failed" and job.error.startswith("filter ['nvidia-*'] matches no package")
    assert published(tmp_path) == []


def test_oci_job_failure_is_one_line(sqlite_url: str, tmp_path: Path) -> None:
    """Kind oci runs in the same job framework: an unreachable registry fails the job cleanly."""
    ctx = make(sqlite_url, tmp_path / "data", [{"name": "ngc", "kind": "oci", "registry": "https://127.0.0.1:1",
                                                "repositories": ["nvidia/pytorch"], "retries": 0}])
    job = sync(ctx, "ngc")
    assert job.status == "failed" and job.error.startswith("registry 127.0.0.1:1") and "\n" not in job.error
    with ctx.sessions() as s:
        from dgxie.mirror import queries

        assert queries.get_mirror(s, ctx.site, "ngc").failures == 1
