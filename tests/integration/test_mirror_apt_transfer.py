"""Filtered (re-signed) mirrors and air-gap export/import, checked by a real apt-get."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dgxie.errors import Invalid
from dgxie.mirror import bundle, service
from tests.integration.test_mirror_apt_sync import make
from tests.support.mirror_apt import World, apt_get, dgxie_http, world


@pytest.fixture
def up(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


def test_filtered_mirror_is_resigned_by_dgxie(up: World, sqlite_url: str, tmp_path: Path) -> None:
    up.add("extra")
    up.add("tool", depends="libfoo | libbar")
    up.add("libbar")
    up.repo.publish()
    ctx = make(sqlite_url, tmp_path / "data", [up.mirror("f", filter=["world", "tool"])])
    job = service.sync_now(ctx.sessions, ctx.site, "f", "test")
    assert job.status == "succeeded", job.error
    with dgxie_http(ctx) as base:
        url = f"{base}/mirror/apt/f"
        key = httpx.get(f"{url}/dgxie-archive-key.gpg")
        assert key.status_code == 200 and key.content[:1] in (b"\x98", b"\x99", b"\xc6")  # binary OpenPGP key
        kr = tmp_path / "dgxie-key.gpg"
        kr.write_bytes(key.content)
        # upstream's key does not verify the re-signed Release; dgxie's does
        r = apt_get(tmp_path / "bad", url, up.keyring, "update")
        assert r.returncode != 0 and "NO_PUBKEY" in r.stdout + r.stderr
        r = apt_get(tmp_path / "c", url, kr, "update", by_hash=True)
        assert r.returncode == 0, r.stdout + r.stderr
        r = apt_get(tmp_path / "c", url, kr, "install", "--download-only", "world", by_hash=True)
        assert r.returncode == 0, r.stdout + r.stderr
        r = apt_get(tmp_path / "c", url, kr, "install", "--download-only", "extra", by_hash=True)
        assert r.returncode != 0 and "Unable to locate package extra" in r.stderr
        pk = httpx.get(f"{url}/dists/stable/main/binary-amd64/Packages").text
        names = sorted(line.split()[1] for line in pk.splitlines() if line.startswith("Package:"))
        assert names == ["hello", "libbar", "tool", "world"]  # world -> hello; tool -> libbar (libfoo absent)
    # the signing key is sealed at rest: without the site's passphrase gpg cannot sign with it
    home = tmp_path / "data/mirrors/apt/f/gnupg"
    assert (home / "passphrase.sealed").is_file()
    short = Path(tempfile.mkdtemp(prefix="mirror-apt-")) / "h"  # gpg-agent needs a short socket path
    shutil.copytree(home, short)
    try:
        gpg = ["gpg", "--batch", "--homedir", str(short), "--pinentry-mode", "loopback"]
        assert subprocess.run([*gpg, "--list-secret-keys"], capture_output=True).stdout  # the key is there
        r2 = subprocess.run([*gpg, "--passphrase", "", "--clearsign"], input=b"x", capture_output=True)
        assert r2.returncode != 0 and b"passphrase" in r2.stderr.lower()  # the key is locked
    finally:
        subprocess.run(["gpgconf", "--homedir", str(short), "--kill", "all"], capture_output=True)
        shutil.rmtree(short.parent, ignore_errors=True)


def test_export_import_and_incremental(up: World, sqlite_url: str, tmp_path: Path) -> None:
    a = make(sqlite_url, tmp_path / "a", [up.mirror()])
    assert service.sync_now(a.sessions, a.site, "up", "test").status == "succeeded"
    with a.sessions() as s:
        full = bundle.export(s, a.site, ["up"], tmp_path / "b1")
    assert full.blobs == 5 and json.loads((tmp_path / "b1/dgxie-bundle.json").read_text())["base"] == {"up": None}

    b_url = "sqlite:///" + str(tmp_path / "b.db")
    from dgxie import db

    db.upgrade(b_url)
    b = make(b_url, tmp_path / "b", [])  # the disconnected side need not configure the mirror
    with b.sessions() as s, s.begin():
        res = bundle.import_(s, b.site, tmp_path / "b1")
    assert res.mirrors == ["up"]

    # an incremental sync upstream, then an incremental export: only the new blobs travel
    up.add("extra", payload=4000)
    up.repo.publish()
    assert service.sync_now(a.sessions, a.site, "up", "test").status == "succeeded"
    with a.sessions() as s:
        inc = bundle.export(s, a.site, ["up"], tmp_path / "b2", incremental=True)
    assert inc.blobs == 4  # InRelease, Packages, Packages.gz, extra.deb
    assert 4000 < inc.bytes < full.bytes + 4000

    # a third data dir that never got the base refuses the incremental bundle, publishing nothing
    c_url = "sqlite:///" + str(tmp_path / "c.db")
    db.upgrade(c_url)
    c = make(c_url, tmp_path / "c", [])
    with c.sessions() as s, pytest.raises(Invalid, match="incremental from snapshot"):
        bundle.import_(s, c.site, tmp_path / "b2")
    assert not (tmp_path / "c/mirrors/apt/up/current").exists()

    # a damaged blob is refused
    victim = next((tmp_path / "b2/blobs/sha256").iterdir())
    good = victim.read_bytes()
    victim.unlink()
    victim.write_bytes(b"x" * len(good))
    with b.sessions() as s, pytest.raises(Invalid, match="corrupt"):
        bundle.import_(s, b.site, tmp_path / "b2")
    victim.unlink()
    victim.write_bytes(good)
    with b.sessions() as s, s.begin():
        bundle.import_(s, b.site, tmp_path / "b2")

    with dgxie_http(b) as base:
        url = f"{base}/mirror/apt/up"
        r = apt_get(tmp_path / "cb", url, up.keyring, "update")
        assert r.returncode == 0, r.stdout + r.stderr
        r = apt_get(tmp_path / "cb", url, up.keyring, "install", "--download-only", "world", "extra")
        assert r.returncode == 0, r.stdout + r.stderr
