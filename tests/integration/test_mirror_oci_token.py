"""NGC-style auth: the real `docker-registry` with `auth: token`, behind a token server written for
the test (support/oci_peers.py: TokenServer; no packaged token server exists here) that accepts only
user `$oauthtoken` with the right API key, like nvcr.io's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dgxie.mirror.kind import mirror_dir
from tests.support.oci import (
    Layout,
    Registry,
    add_image,
    docker_registry,
    push,
    raw_digest,
    run_cli,
    serve_dgxie,
    write_config,
)
from tests.support.oci_peers import TokenServer

KEY = "nvapi-test-0123456789abcdef"


@pytest.fixture(scope="module")
def token_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, TokenServer, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("oci-token")
    layout = Layout(tmp / "layout")
    images = {t: add_image(layout, t, c) for t, c in (("24.01", "2024-01-20T00:00:00Z"),
                                                      ("24.02", "2024-02-20T00:00:00Z"))}
    layout.save()
    (tmp / "reg").mkdir()
    with TokenServer(tmp, KEY) as ts, docker_registry(tmp / "reg", ts.registry_auth()) as reg:
        reg.creds = f"$oauthtoken:{KEY}"
        for tag in images:
            push(tmp / "layout", tag, reg)
        yield reg, ts, images


def ngc(reg: Registry, key_file: Path) -> dict[str, Any]:
    return {"name": "ngc", "kind": "oci", "registry": f"http://{reg.host}", "username": "$oauthtoken",
            "password_file": str(key_file), "repositories": ["nvidia/pytorch"], "retries": 1}


def test_ngc_token_auth_mirror_and_pull(token_upstream: tuple[Registry, TokenServer, dict[str, Any]],
                                        tmp_path: Path, sqlite_url: str) -> None:
    reg, ts, images = token_upstream
    data = tmp_path / "data"
    (tmp_path / "ngc-key").write_text(KEY + "\n")
    cfg = write_config(tmp_path / "dgxie.yaml", data, [ngc(reg, tmp_path / "ngc-key")])
    seen = len(ts.requests)
    r = run_cli(cfg, "mirror-oci", "sync", "ngc", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["tags"] == {"nvidia/pytorch": ["24.01", "24.02"]}
    asked = ts.requests[seen:]
    assert asked and all("scope=repository%3Anvidia%2Fpytorch%3Apull" in q for q in asked)
    assert len(asked) == 1  # one token, reused for every request of the sync
    with serve_dgxie(data, sqlite_url) as port:
        assert raw_digest(f"docker://127.0.0.1:{port}/nvidia/pytorch:24.02") == images["24.02"]["index"]


def test_ngc_wrong_key_is_a_clear_error(token_upstream: tuple[Registry, TokenServer, dict[str, Any]],
                                        tmp_path: Path) -> None:
    reg, _, _ = token_upstream
    (tmp_path / "ngc-key").write_text("nvapi-wrong\n")
    cfg = write_config(tmp_path / "dgxie.yaml", tmp_path / "data", [ngc(reg, tmp_path / "ngc-key")])
    r = run_cli(cfg, "mirror-oci", "sync", "ngc")
    assert r.code == 1
    assert r.err.strip().endswith("the token server refused user '$oauthtoken' (401)") and "nvapi-wrong" not in r.err
    assert not (mirror_dir(tmp_path / "data", "oci", "ngc") / "current.json").exists()

    (tmp_path / "empty").write_text("\n")
    cfg = write_config(tmp_path / "dgxie.yaml", tmp_path / "data", [ngc(reg, tmp_path / "empty")])
    r = run_cli(cfg, "mirror-oci", "sync", "ngc")
    assert r.code == 1 and "is empty" in r.err
