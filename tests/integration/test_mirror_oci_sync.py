"""OCI mirror against Debian's real `docker-registry` (htpasswd auth), skopeo as the client.

The image is a multi-arch OCI layout written by the test (no Docker) and pushed with
`skopeo copy --all`. dgxie mirrors it, serves it on /v2/, and skopeo pulls it back with the same
digests. The fault injector (support/oci_peers.py: FaultProxy, written here because no packaged
equivalent exists) tampers with or stalls a blob between dgxie and the real registry.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dgxie.errors import Invalid, Unauthorized
from dgxie.mirror.kind import mirror_dir, store_for
from dgxie.mirror.oci.auth import Credentials
from dgxie.mirror.oci.client import RegistryClient
from dgxie.mirror.oci.snapshot import adopt_snapshot, current_snapshot
from dgxie.mirror.oci.store import OciReader, UnknownManifest
from dgxie.mirror.service import mirror_lock
from tests.support.oci import (
    Layout,
    Registry,
    add_image,
    containerd,
    docker_registry,
    htpasswd,
    push,
    raw_digest,
    run_cli,
    serve_dgxie,
    skopeo,
    write_config,
)
from tests.support.oci_peers import FaultProxy

# 24.01 was rebuilt last, so "newest" by created time differs from tag order.
TAGS = {"23.12-py3": "2023-12-15T00:00:00Z", "24.01": "2024-05-20T08:00:00.123456789Z",
        "24.02": "2024-02-10T00:00:00Z", "24.03": "2024-03-10T00:00:00Z", "24.03-igpu": "2024-03-11T00:00:00Z"}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("oci-basic")
    layout = Layout(tmp / "layout")
    images: dict[str, Any] = {t: add_image(layout, t, c) for t, c in TAGS.items()}
    images["big"] = add_image(layout, "big", "2024-06-01T00:00:00Z", archs=("amd64",),
                              extra=random.Random(6).randbytes(3 << 20))  # 3 MiB, incompressible
    layout.save()
    htpasswd(tmp / "htpasswd", "alice", "s3cret")
    (tmp / "reg").mkdir()
    with docker_registry(tmp / "reg", {"htpasswd": {"realm": "dgxie-test", "path": str(tmp / "htpasswd")}}) as reg:
        reg.creds = "alice:s3cret"
        for tag in TAGS:
            push(tmp / "layout", tag, reg)
        push(tmp / "layout", "big", reg, repo="nvidia/big")
        skopeo("copy", "--all", "--format", "v2s2", "--dest-tls-verify=false", "--dest-creds", reg.creds,
               f"oci:{tmp / 'layout'}:24.02", f"docker://{reg.host}/nvidia/dockerfmt:24.02")
        yield reg, images


def mirror(reg_url: str, tmp: Path, **extra: Any) -> dict[str, Any]:
    key = tmp / "alice.key"
    if not key.exists():
        key.write_text("s3cret\n")
    return {"name": "ngc", "kind": "oci", "registry": reg_url, "username": "alice", "password_file": str(key),
            "repositories": ["nvidia/pytorch"], "retries": 1, "timeout": 20} | extra


def sync(cfg: Path, name: str = "ngc") -> dict[str, Any]:
    r = run_cli(cfg, "mirror-oci", "sync", name, "--json")
    assert r.code == 0, r.err
    out: dict[str, Any] = json.loads(r.out)
    return out


def test_mirror_then_pull_back_with_skopeo(upstream: tuple[Registry, dict[str, Any]], tmp_path: Path,
                                           sqlite_url: str) -> None:
    reg, images = upstream
    data = tmp_path / "data"
    m = mirror(f"http://{reg.host}", tmp_path, tags={"include": [r"^24\."], "exclude": ["igpu$"], "keep_newest": 2})
    cfg = write_config(tmp_path / "dgxie.yaml", data, [m])
    first = sync(cfg)
    assert first["tags"] == {"nvidia/pytorch": ["24.01", "24.03"]}  # newest by created, not by tag
    assert first["downloaded_blobs"] == 6  # 2 shared base layers + 2 tags x 2 archs of top layers
    again = sync(cfg)
    assert again["downloaded_blobs"] == 0 and again["skipped_blobs"] == 6

    with serve_dgxie(data, sqlite_url) as port:
        dgx = f"127.0.0.1:{port}"
        for tag in ("24.01", "24.03"):
            assert raw_digest(f"docker://{dgx}/nvidia/pytorch:{tag}") == raw_digest(
                f"docker://{reg.host}/nvidia/pytorch:{tag}", reg.creds) == images[tag]["index"]
        info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{dgx}/nvidia/pytorch:24.03"))
        assert info["Digest"] == images["24.03"]["index"]
        assert info["Architecture"] == "amd64" and info["Os"] == "linux"  # resolved the index, read the config
        assert sorted(info["RepoTags"]) == ["24.01", "24.03"]
        out = tmp_path / "out"
        skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{dgx}/nvidia/pytorch:24.01", f"oci:{out}:24.01")
        index = json.loads((out / "index.json").read_text())
        assert index["manifests"][0]["digest"] == images["24.01"]["index"]
        for blob in (out / "blobs" / "sha256").iterdir():
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
        assert set(images["24.01"]["layers"]) <= {f"sha256:{b.name}" for b in (out / "blobs" / "sha256").iterdir()}
        with pytest.raises(AssertionError, match="manifest unknown"):
            skopeo("inspect", "--tls-verify=false", f"docker://{dgx}/nvidia/pytorch:24.02")


def test_platform_filter_keeps_upstream_index_digest(upstream: tuple[Registry, dict[str, Any]], tmp_path: Path) -> None:
    reg, images = upstream
    data = tmp_path / "data"
    cfg = write_config(tmp_path / "dgxie.yaml", data, [mirror(f"http://{reg.host}", tmp_path,
                                                              tags={"include": ["^24.02$"]}, platforms=["linux/arm64"])])
    assert sync(cfg)["downloaded_blobs"] == 2
    reader = OciReader(data)
    assert reader.manifest("nvidia/pytorch", "24.02").digest == images["24.02"]["index"]
    assert reader.manifest("nvidia/pytorch", images["24.02"]["arm64"]).media_type.endswith("manifest.v1+json")
    with pytest.raises(UnknownManifest):
        reader.manifest("nvidia/pytorch", images["24.02"]["amd64"])


def test_bad_credentials_and_no_matching_tag_change_nothing(upstream: tuple[Registry, dict[str, Any]],
                                                              tmp_path: Path) -> None:
    reg, _ = upstream
    data = tmp_path / "data"
    good = mirror(f"http://{reg.host}", tmp_path, tags={"include": ["^24.03$"]})
    cfg = write_config(tmp_path / "dgxie.yaml", data, [good])
    sync(cfg)
    current = mirror_dir(data, "oci", "ngc") / "current.json"
    before = current.read_bytes()

    (tmp_path / "wrong.key").write_text("not-the-password\n")
    write_config(cfg, data, [good | {"password_file": str(tmp_path / "wrong.key"), "tags": {}}])
    r = run_cli(cfg, "mirror-oci", "sync", "ngc")
    assert r.code == 1 and "refused user 'alice'" in r.err and "not-the-password" not in r.err + r.out
    assert r.err.count("\n") == 1

    write_config(cfg, data, [good | {"tags": {"include": [r"^99\."]}}])
    r = run_cli(cfg, "mirror-oci", "sync", "ngc")
    assert r.code == 1 and "no tag matches include ['^99\\\\.']" in r.err and "24.01" in r.err

    write_config(cfg, data, [good | {"repositories": ["nvidia/absent"]}])
    r = run_cli(cfg, "mirror-oci", "sync", "ngc")
    assert r.code == 1 and "repository nvidia/absent not found" in r.err
    assert current.read_bytes() == before


def test_corrupted_blob_is_refused(upstream: tuple[Registry, dict[str, Any]], tmp_path: Path) -> None:
    reg, images = upstream
    data = tmp_path / "data"
    cfg = write_config(tmp_path / "dgxie.yaml", data, [mirror(f"http://{reg.host}", tmp_path,
                                                              tags={"include": ["^24.03$"]})])
    sync(cfg)
    current = mirror_dir(data, "oci", "ngc") / "current.json"
    before = current.read_bytes()
    bad = next(iter(d for d in images["23.12-py3"]["layers"] if d not in images["24.03"]["layers"]))
    with FaultProxy(f"http://{reg.host}") as proxy:
        proxy.tamper.add(bad)
        write_config(cfg, data, [mirror(proxy.url, tmp_path, tags={"include": ["^23"]})])
        r = run_cli(cfg, "mirror-oci", "sync", "ngc")
    assert r.code == 1 and f"blob {bad} of nvidia/pytorch hashed to" in r.err and "refused" in r.err
    store = store_for(data)
    assert not store.has(bad) and store.partial_size(bad) == 0
    assert current.read_bytes() == before


def test_killed_sync_resumes_partial_blob(upstream: tuple[Registry, dict[str, Any]], tmp_path: Path) -> None:
    reg, images = upstream
    data = tmp_path / "data"
    big = max(images["big"]["layers"].items(), key=lambda kv: kv[1])[0]
    store = store_for(data)
    with FaultProxy(f"http://{reg.host}") as proxy:
        proxy.stall[big] = 1 << 20
        cfg = write_config(tmp_path / "dgxie.yaml", data, [mirror(proxy.url, tmp_path, name="big",
                                                                  repositories=["nvidia/big"], timeout=60)])
        proc = subprocess.Popen([sys.executable, "-m", "dgxie", "--config", str(cfg), "mirror-oci", "sync", "big",
                                 "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while store.partial_size(big) < (1 << 20) and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.1)
        finally:
            proc.kill()
            proc.wait(10)
        done = store.partial_size(big)
        assert done == 1 << 20, done
        assert not (mirror_dir(data, "oci", "big") / "current.json").exists()
        others = sum(s for d, s in images["big"]["layers"].items() if d != big and not store.has(d))
        proxy.stall.clear()
        proxy.release.set()
        r = sync(cfg, "big")
        assert (big, f"bytes={done}-") in proxy.ranges
    assert r["downloaded_bytes"] == images["big"]["layers"][big] - done + others  # only the rest of it
    assert store.has(big) and store.partial_size(big) == 0
    assert hashlib.sha256(store.path(big).read_bytes()).hexdigest() == big.removeprefix("sha256:")


def test_client_pages_tags_and_needs_credentials(upstream: tuple[Registry, dict[str, Any]]) -> None:
    reg, _ = upstream
    with RegistryClient(f"http://{reg.host}", credentials=Credentials("alice", "s3cret"), retries=0) as client:
        assert client.list_tags("nvidia/pytorch", page_size=2) == sorted(TAGS)  # 3 pages via Link rel="next"
    with RegistryClient(f"http://{reg.host}", retries=0) as anonymous, \
            pytest.raises(Unauthorized, match="needs credentials"):
        anonymous.ping()


def test_one_sync_per_mirror_at_a_time(upstream: tuple[Registry, dict[str, Any]], tmp_path: Path) -> None:
    reg, _ = upstream
    data = tmp_path / "data"
    data.mkdir(mode=0o700)  # as dgxie makes it (mirror_lock's mkdir would make it 0755, which the CLI names)
    cfg = write_config(tmp_path / "dgxie.yaml", data, [mirror(f"http://{reg.host}", tmp_path)])
    with mirror_lock(mirror_dir(data, "oci", "ngc"), "ngc"):  # what another process's sync holds
        r = run_cli(cfg, "mirror-oci", "sync", "ngc")
    assert r.code == 1 and "mirror ngc is already syncing" in r.err and r.err.count("\n") == 1
    assert not (mirror_dir(data, "oci", "ngc") / "current.json").exists()


def test_dropped_connection_resumes_and_missing_blob_fails(upstream: tuple[Registry, dict[str, Any]],
                                                           tmp_path: Path) -> None:
    reg, images = upstream
    data = tmp_path / "data"
    big = max(images["big"]["layers"].items(), key=lambda kv: kv[1])[0]
    with FaultProxy(f"http://{reg.host}") as proxy:
        proxy.cut[big] = 1 << 20
        proxy.unavailable += ["/tags/list", "/manifests/big"]  # 503 once each: retried with backoff
        cfg = write_config(tmp_path / "dgxie.yaml", data, [mirror(proxy.url, tmp_path, name="big",
                                                                  repositories=["nvidia/big"], retries=2)])
        r = sync(cfg, "big")  # the same sync retries and resumes from where the connection dropped
        assert (big, "bytes=1048576-") in proxy.ranges
        assert proxy.unavailable == []  # both 503s were met and retried past
        assert r["downloaded_bytes"] == sum(images["big"]["layers"].values())
        current = mirror_dir(data, "oci", "big") / "current.json"
        before = current.read_bytes()

        gone = next(d for d in images["24.03"]["layers"] if d not in images["big"]["layers"])
        proxy.missing.add(gone)
        write_config(cfg, data, [mirror(proxy.url, tmp_path, name="big", tags={"include": ["^24.03$"]})])
        r2 = run_cli(cfg, "mirror-oci", "sync", "big")
    assert r2.code == 1 and f"blob {gone} of nvidia/pytorch not found" in r2.err
    assert current.read_bytes() == before


def test_docker_manifest_list_media_types(upstream: tuple[Registry, dict[str, Any]], tmp_path: Path,
                                          sqlite_url: str) -> None:
    """Docker schema 2 (manifest list + v2 manifests), as Docker Hub and older NGC images are."""
    reg, _ = upstream
    data = tmp_path / "data"
    cfg = write_config(tmp_path / "dgxie.yaml", data, [mirror(f"http://{reg.host}", tmp_path,
                                                              repositories=["nvidia/dockerfmt"])])
    sync(cfg)
    upstream_digest = raw_digest(f"docker://{reg.host}/nvidia/dockerfmt:24.02", reg.creds)
    hit = OciReader(data).manifest("nvidia/dockerfmt", "24.02")
    assert hit.media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert hit.digest == upstream_digest
    with serve_dgxie(data, sqlite_url) as port:
        out = tmp_path / "out"
        skopeo("copy", "--all", "--src-tls-verify=false", f"docker://127.0.0.1:{port}/nvidia/dockerfmt:24.02",
               f"dir:{out}")
        assert "sha256:" + hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest() == upstream_digest


def test_snapshot_carried_to_another_data_dir(upstream: tuple[Registry, dict[str, Any]], tmp_path: Path,
                                               sqlite_url: str) -> None:
    """What an export/import bundle does for OCI: blobs by `blob_digests()`, then the snapshot document."""
    reg, images = upstream
    src, dst = tmp_path / "src", tmp_path / "dst"
    cfg = write_config(tmp_path / "dgxie.yaml", src, [mirror(f"http://{reg.host}", tmp_path, tags={"include": ["^24.01$"]})])
    sync(cfg)
    snap = current_snapshot(mirror_dir(src, "oci", "ngc"))
    assert snap is not None
    doc = json.loads(json.dumps(snap.to_manifest()))
    src_store, dst_store = store_for(src), store_for(dst)
    digests = sorted(snap.blob_digests())
    for d in digests[:-1]:
        dst_store.put_file(src_store.path(d))
    with pytest.raises(Invalid, match="1 blobs are not in the store"):
        adopt_snapshot(mirror_dir(dst, "oci", "ngc"), doc, dst_store)
    assert current_snapshot(mirror_dir(dst, "oci", "ngc")) is None
    dst_store.put_file(src_store.path(digests[-1]))
    adopt_snapshot(mirror_dir(dst, "oci", "ngc"), doc, dst_store)
    with serve_dgxie(dst, sqlite_url) as port:
        assert raw_digest(f"docker://127.0.0.1:{port}/nvidia/pytorch:24.01") == images["24.01"]["index"]
        skopeo("copy", "--all", "--src-tls-verify=false", f"docker://127.0.0.1:{port}/nvidia/pytorch:24.01",
               f"oci:{tmp_path / 'out'}:24.01")


def test_containerd_pulls_through_hosts_toml_with_ns(upstream: tuple[Registry, dict[str, Any]], tmp_path: Path,
                                                     sqlite_url: str) -> None:
    """containerd as on a node: `hosts.toml` names dgxie as the mirror of an upstream host, and
    containerd sends `?ns=<that host>`. Two mirrors hold nvidia/pytorch; only the one whose upstream is
    that host has 24.01 (and it sorts second), so the pull succeeds only if `ns` picks the mirror. The
    upstream itself is gone (a closed loopback port) by then, so everything comes from dgxie."""
    reg, images = upstream
    data = tmp_path / "data"
    with FaultProxy(f"http://{reg.host}") as proxy:  # a second upstream address for the same registry
        gone_host = f"127.0.0.1:{proxy.port}"
        cfg = write_config(tmp_path / "dgxie.yaml", data, [
            mirror(f"http://{reg.host}", tmp_path, name="a-direct", tags={"include": ["^24.03$"]}),
            mirror(proxy.url, tmp_path, name="b-proxied", tags={"include": ["^24.01$"]})])
        sync(cfg, "a-direct")
        sync(cfg, "b-proxied")
    hosts = tmp_path / "certs.d" / gone_host
    hosts.mkdir(parents=True)
    with serve_dgxie(data, sqlite_url) as port, containerd(tmp_path / "ctd") as sock:
        (hosts / "hosts.toml").write_text(f'server = "http://{gone_host}"\n\n'
                                          f'[host."http://127.0.0.1:{port}"]\n  capabilities = ["pull", "resolve"]\n')
        r = subprocess.run(["ctr", "-a", sock, "-n", "dgxie-test", "content", "fetch", "--all-platforms",
                            "--hosts-dir", str(tmp_path / "certs.d"), f"{gone_host}/nvidia/pytorch:24.01"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        held = subprocess.run(["ctr", "-a", sock, "-n", "dgxie-test", "content", "ls", "-q"],
                              capture_output=True, text=True, timeout=60, check=True).stdout.split()
    want = {images["24.01"]["index"], images["24.01"]["amd64"], images["24.01"]["arm64"], *images["24.01"]["layers"]}
    assert want <= set(held)
