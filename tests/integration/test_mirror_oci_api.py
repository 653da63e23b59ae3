"""The read-only distribution API (/v2/) over published snapshots: media types, digests, Range,
HEAD, the spec's error bodies and codes, containerd's `?ns=`, and switching snapshots."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dgxie.app import create_app
from dgxie.compose import build_context
from dgxie.config import Settings
from dgxie.mirror.kind import mirror_dir, store_for
from dgxie.mirror.oci.client import OCI_MANIFEST
from dgxie.mirror.oci.snapshot import OciSnapshot, RepoSnapshot, list_history, publish_snapshot, switch_snapshot


def publish(data: Path, name: str, registry: str, repo: str, tag: str, payload: bytes) -> tuple[str, str]:
    """Store one image (config + layer + manifest) and publish a snapshot; return (manifest, layer) digests."""
    store = store_for(data)
    layer = "sha256:" + store.put_bytes(payload)
    config = "sha256:" + store.put_bytes(b'{"architecture":"amd64","os":"linux"}')
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                                      "size": 37},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer,
                                       "size": len(payload)}]}).encode()
    mdigest = "sha256:" + store.put_bytes(manifest)
    snap = OciSnapshot(name=name, registry=registry, repositories={repo: RepoSnapshot(
        tags={tag: mdigest}, manifests={mdigest: (OCI_MANIFEST, len(manifest))},
        blobs={layer: len(payload), config: 37})})
    publish_snapshot(mirror_dir(data, "oci", name), snap)
    return mdigest, layer


@pytest.fixture
def api(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[TestClient, Path]]:
    data = tmp_path / "data"
    ctx = build_context(Settings(database_url=sqlite_url, data_dir=data), migrate=False)
    with TestClient(create_app(ctx)) as c:
        yield c, data
    ctx.engine.dispose()


def code(resp: object) -> str:
    body = resp.json()  # type: ignore[attr-defined]
    return str(body["errors"][0]["code"])


def test_manifests_blobs_and_errors(api: tuple[TestClient, Path]) -> None:
    c, data = api
    mdigest, layer = publish(data, "ngc", "https://nvcr.io", "nvidia/cuda/base", "12.4", b"0123456789")
    r = c.get("/v2/")
    assert r.status_code == 200 and r.headers["docker-distribution-api-version"] == "registry/2.0"

    r = c.get("/v2/nvidia/cuda/base/tags/list")
    assert r.json() == {"name": "nvidia/cuda/base", "tags": ["12.4"]}

    for ref in ("12.4", mdigest):
        r = c.get(f"/v2/nvidia/cuda/base/manifests/{ref}")
        assert r.status_code == 200 and r.headers["content-type"] == OCI_MANIFEST
        assert r.headers["docker-content-digest"] == mdigest
        assert "sha256:" + hashlib.sha256(r.content).hexdigest() == mdigest
    h = c.head("/v2/nvidia/cuda/base/manifests/12.4")
    assert h.status_code == 200 and h.content == b"" and int(h.headers["content-length"]) > 0
    assert h.headers["docker-content-digest"] == mdigest

    r = c.get(f"/v2/nvidia/cuda/base/blobs/{layer}")
    assert r.content == b"0123456789" and r.headers["docker-content-digest"] == layer
    r = c.get(f"/v2/nvidia/cuda/base/blobs/{layer}", headers={"Range": "bytes=3-6"})
    assert r.status_code == 206 and r.content == b"3456" and r.headers["content-range"] == "bytes 3-6/10"
    h = c.head(f"/v2/nvidia/cuda/base/blobs/{layer}")
    assert h.status_code == 200 and h.headers["content-length"] == "10" and h.content == b""

    r = c.get("/v2/nvidia/cuda/base/manifests/99.9")
    assert r.status_code == 404 and code(r) == "MANIFEST_UNKNOWN"
    assert r.headers["content-type"] == "application/json"
    r = c.get("/v2/nvidia/other/manifests/12.4")
    assert r.status_code == 404 and code(r) == "NAME_UNKNOWN"
    r = c.get("/v2/nvidia/cuda/base/blobs/sha256:" + "0" * 64)
    assert r.status_code == 404 and code(r) == "BLOB_UNKNOWN"
    r = c.get("/v2/nvidia/cuda/base/blobs/md5:abc")
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"
    r = c.get("/v2/Not..Valid/tags/list")
    assert r.status_code == 400 and code(r) == "NAME_INVALID"
    r = c.put("/v2/nvidia/cuda/base/manifests/12.4", content=b"{}")
    assert r.status_code == 405 and code(r) == "UNSUPPORTED"

    store_for(data).path(layer).unlink()  # a store damaged behind dgxie's back: 404, not 500
    r = c.get(f"/v2/nvidia/cuda/base/blobs/{layer}")
    assert r.status_code == 404 and code(r) == "BLOB_UNKNOWN"


def test_ns_selects_the_mirror_of_that_upstream(api: tuple[TestClient, Path]) -> None:
    c, data = api
    a, _ = publish(data, "a-ngc", "https://nvcr.io", "library/ubuntu", "24.04", b"from nvcr")
    b, _ = publish(data, "b-hub", "https://registry-1.docker.io", "library/ubuntu", "24.04", b"from hub")
    assert a != b
    get = lambda q: c.get(f"/v2/library/ubuntu/manifests/24.04{q}").headers["docker-content-digest"]  # noqa: E731
    assert get("?ns=registry-1.docker.io") == b
    assert get("?ns=docker.io") == b  # what containerd sends for Docker Hub
    assert get("?ns=nvcr.io") == a
    assert get("") == a  # no ns: the first mirror by name holding the repository


def test_switch_back_to_an_older_snapshot(api: tuple[TestClient, Path]) -> None:
    c, data = api
    old, _ = publish(data, "ngc", "https://nvcr.io", "nvidia/pytorch", "24.01", b"old")
    new, _ = publish(data, "ngc", "https://nvcr.io", "nvidia/pytorch", "24.01", b"new")
    assert c.get("/v2/nvidia/pytorch/manifests/24.01").headers["docker-content-digest"] == new
    state = mirror_dir(data, "oci", "ngc")
    first = list_history(state)[0]
    switch_snapshot(state, first)
    assert c.get("/v2/nvidia/pytorch/manifests/24.01").headers["docker-content-digest"] == old
