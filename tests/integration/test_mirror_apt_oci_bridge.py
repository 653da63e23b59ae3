"""Kind `oci` through the generic mirror service: `dgxie mirror sync|list|snapshots|export|import`
against Debian's docker-registry (the OCI side's module fixture), pulled back with skopeo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.test_mirror_oci_sync import mirror, upstream  # noqa: F401 (module fixture)
from tests.support.oci import Registry, raw_digest, run_cli, serve_dgxie, write_config


def test_oci_through_mirror_commands_and_bundle(upstream: tuple[Registry, dict[str, Any]],  # noqa: F811
                                                 tmp_path: Path) -> None:
    reg, images = upstream
    src, dst = tmp_path / "src", tmp_path / "dst"
    cfg = write_config(tmp_path / "src.yaml", src, [mirror(f"http://{reg.host}", tmp_path,
                                                           tags={"include": ["^24.01$"]})])
    assert run_cli(cfg, "db", "upgrade").code == 0
    r = run_cli(cfg, "mirror", "sync", "ngc", "--json", "-q")
    assert r.code == 0, r.err
    job = json.loads(r.out)
    assert job["status"] == "succeeded" and job["files_fetched"] > 0 and job["bytes_fetched"] > 0
    m = json.loads(run_cli(cfg, "mirror", "list", "--json").out)[0]
    assert m["kind"] == "oci" and m["current_snapshot"] == job["snapshot"] and m["files"] > 0
    snaps = json.loads(run_cli(cfg, "mirror", "snapshots", "ngc", "--json").out)
    assert [s["current"] for s in snaps] == [True]

    r = run_cli(cfg, "mirror", "export", "ngc", str(tmp_path / "bundle"))
    assert r.code == 0, r.err
    cfg2 = write_config(tmp_path / "dst.yaml", dst, [])
    assert run_cli(cfg2, "db", "upgrade").code == 0
    r = run_cli(cfg2, "mirror", "import", str(tmp_path / "bundle"))
    assert r.code == 0, r.err
    with serve_dgxie(dst, f"sqlite:///{dst}/dgxie.db") as port:
        assert raw_digest(f"docker://127.0.0.1:{port}/nvidia/pytorch:24.01") == images["24.01"]["index"]
    # garbage collection keeps what the OCI snapshot needs
    r = run_cli(cfg2, "mirror", "gc")
    assert r.code == 0 and r.err.startswith("removed 0 blobs"), r.err
