"""`dgxie mirror-oci ...` input errors and snapshot switching (no registry needed), through the
common mirror service (a switch is a recorded rollback)."""

from __future__ import annotations

import json
from pathlib import Path

from dgxie import db
from dgxie.events import list_events
from dgxie.mirror.kind import mirror_dir, store_for
from dgxie.mirror.oci.client import OCI_INDEX
from dgxie.mirror.oci.snapshot import (
    OciSnapshot,
    RepoSnapshot,
    current_snapshot,
    list_history,
    publish_snapshot,
    referenced_digests,
)
from tests.support.oci import run_cli, write_config

D = "sha256:" + "c" * 64
E = "sha256:" + "d" * 64


def test_bad_mirror_entries_are_one_line_errors(tmp_path: Path) -> None:
    data = tmp_path / "data"
    apt = {"name": "ubuntu", "kind": "apt", "url": "http://archive.ubuntu.com/ubuntu", "suites": ["noble"],
           "keyring": "/usr/share/keyrings/ubuntu-archive-keyring.gpg"}
    ngc = {"name": "ngc", "kind": "oci", "registry": "https://nvcr.io", "repositories": ["nvidia/pytorch"]}
    # the OCI keys are validated with the rest of the config, before any command runs
    cfg = write_config(tmp_path / "dgxie.yaml", data, [apt, ngc | {"tags": {"include": ["[unclosed"]}}])
    for args in (("mirror-oci", "sync", "ngc"), ("mirror", "list")):
        r = run_cli(cfg, *args)
        assert r.code == 1 and r.err.startswith("dgxie: error: mirrors[1].tags.include: '[unclosed' is not a regular")
        assert r.err.count("\n") == 1 and not data.exists()
    cfg = write_config(tmp_path / "dgxie.yaml", data, [apt, ngc])
    r = run_cli(cfg, "mirror-oci", "sync", "ubuntu")
    assert r.code == 1 and r.err == "dgxie: error: mirror ubuntu is of kind apt, not oci\n"
    r = run_cli(cfg, "mirror-oci", "sync", "nope")
    assert r.code == 1 and "no mirror 'nope' in the config (have: ubuntu, ngc)" in r.err
    assert not data.joinpath("mirrors").exists()


def test_snapshots_list_and_switch(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = write_config(tmp_path / "dgxie.yaml", data, [{"name": "ngc", "kind": "oci", "registry": "https://nvcr.io",
                                                         "repositories": ["nvidia/pytorch"]}])
    state = mirror_dir(data, "oci", "ngc")
    for tag, digest in (("24.01", D), ("24.02", E)):
        publish_snapshot(state, OciSnapshot(name="ngc", registry="https://nvcr.io", repositories={
            "nvidia/pytorch": RepoSnapshot(tags={tag: digest},
                                           manifests={digest: ("application/vnd.oci.image.index.v1+json", 1)})}))
    first, second = list_history(state)
    assert referenced_digests(state) == {D, E}  # the kept older snapshot's blobs too
    r = run_cli(cfg, "mirror-oci", "snapshots", "ngc")
    assert r.code == 0 and r.out.splitlines() == [f"  {first}", f"* {second}"]
    r = run_cli(cfg, "mirror-oci", "switch", "ngc", first)
    assert r.code == 0 and r.out == f"mirror ngc: now serving snapshot {first}\n"
    snap = current_snapshot(state)
    assert snap is not None and snap.id == first and "24.01" in snap.repositories["nvidia/pytorch"].tags
    r = run_cli(cfg, "mirror", "snapshots", "ngc", "--json")
    listed = json.loads(r.out)
    assert [(s["snapshot"], s["current"], s["files"]) for s in listed] == [(first, True, 1), (second, False, 1)]
    assert listed[0]["meta"] == {"upstream": "https://nvcr.io", "tags": {"nvidia/pytorch": ["24.01"]}}
    engine = db.make_engine(f"sqlite:///{data}/dgxie.db")
    with db.session_scope(db.session_factory(engine)) as s:
        (ev,) = list_events(s, kind="mirror.rollback")
    engine.dispose()
    assert ev.actor.startswith("cli:") and ev.data == {"mirror": "ngc", "kind": "oci", "from": second, "to": first}
    r = run_cli(cfg, "mirror-oci", "switch", "ngc", "20990101T000000000000Z")
    assert r.code == 1 and "no snapshot '20990101T000000000000Z'" in r.err
    snap = current_snapshot(state)
    assert snap is not None and snap.id == first


def test_incremental_bundle(tmp_path: Path) -> None:
    """`dgxie mirror export --incremental` carries only the blobs an OCI snapshot added since the last
    export; the other side must have imported that one first."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    cfg = write_config(tmp_path / "src.yaml", src, [{"name": "ngc", "kind": "oci", "registry": "https://nvcr.io",
                                                     "repositories": ["nvidia/pytorch"]}])
    store = store_for(src)
    repo = RepoSnapshot()
    for n, tag in enumerate(("24.01", "24.02")):
        data = f"manifest {tag}".encode()
        digest = "sha256:" + store.put_bytes(data)
        repo = RepoSnapshot(tags=repo.tags | {tag: digest}, manifests=repo.manifests | {digest: (OCI_INDEX, len(data))})
        publish_snapshot(mirror_dir(src, "oci", "ngc"), OciSnapshot(name="ngc", registry="https://nvcr.io",
                                                                    repositories={"nvidia/pytorch": repo}))
        r = run_cli(cfg, "mirror", "export", "ngc", str(tmp_path / f"b{n}"), *(["--incremental"] if n else []))
        assert r.code == 0 and " 1 blobs" in r.err, r.err
    first, second = list_history(mirror_dir(src, "oci", "ngc"))
    cfg2 = write_config(tmp_path / "dst.yaml", dst, [])
    r = run_cli(cfg2, "mirror", "import", str(tmp_path / "b1"))
    assert r.code == 1 and f"incremental from snapshot {first}: import that one first" in r.err
    assert run_cli(cfg2, "mirror", "import", str(tmp_path / "b0")).code == 0
    assert run_cli(cfg2, "mirror", "import", str(tmp_path / "b1")).code == 0
    snaps = json.loads(run_cli(cfg2, "mirror", "snapshots", "ngc", "--json").out)
    assert [(s["snapshot"], s["current"], s["source"]) for s in snaps] == [(first, False, "import"),
                                                                          (second, True, "import")]
    snap = current_snapshot(mirror_dir(dst, "oci", "ngc"))
    assert snap is not None and sorted(snap.repositories["nvidia/pytorch"].tags) == ["24.01", "24.02"]
