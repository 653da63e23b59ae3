"""`dgxie mirror-oci ...` input errors and snapshot switching (no registry needed)."""

from __future__ import annotations

from pathlib import Path

from dgxie.mirror.oci_snapshot import (
    OciSnapshot,
    RepoSnapshot,
    current_snapshot,
    list_history,
    publish_snapshot,
    referenced_digests,
)
from dgxie.mirror.oci_store import oci_state_dir
from tests.helpers_oci import run_cli, write_config

D = "sha256:" + "c" * 64
E = "sha256:" + "d" * 64


def test_bad_mirror_entries_are_one_line_errors(tmp_path: Path) -> None:
    data = tmp_path / "data"
    apt = {"name": "ubuntu", "kind": "apt", "url": "http://archive.ubuntu.com/ubuntu"}
    bad = {"name": "ngc", "kind": "oci", "registry": "https://nvcr.io", "repositories": ["nvidia/pytorch"],
           "tags": {"include": ["[unclosed"]}}
    cfg = write_config(tmp_path / "dgxie.yaml", data, [apt, bad])
    r = run_cli(cfg, "mirror-oci", "sync", "ubuntu")
    assert r.code == 1 and r.err == "dgxie: error: mirror ubuntu is of kind apt, not oci\n"
    r = run_cli(cfg, "mirror-oci", "sync", "nope")
    assert r.code == 1 and "no mirror 'nope' in the config (have: ubuntu, ngc)" in r.err
    r = run_cli(cfg, "mirror-oci", "sync", "ngc")
    assert r.code == 1 and r.err.startswith("dgxie: error: mirrors.ngc.tags.include: '[unclosed' is not a regular")
    assert r.err.count("\n") == 1 and not data.joinpath("mirrors").exists()


def test_snapshots_list_and_switch(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = write_config(tmp_path / "dgxie.yaml", data, [{"name": "ngc", "kind": "oci", "registry": "https://nvcr.io",
                                                         "repositories": ["nvidia/pytorch"]}])
    state = oci_state_dir(data, "ngc")
    for tag, digest in (("24.01", D), ("24.02", E)):
        publish_snapshot(state, OciSnapshot(name="ngc", registry="https://nvcr.io", repositories={
            "nvidia/pytorch": RepoSnapshot(tags={tag: digest},
                                           manifests={digest: ("application/vnd.oci.image.index.v1+json", 1)})}))
    first, second = list_history(state)
    assert referenced_digests(state) == {D, E}  # the kept older snapshot's blobs too
    r = run_cli(cfg, "mirror-oci", "snapshots", "ngc")
    assert r.code == 0 and r.out.splitlines() == [f"  {first}", f"* {second}"]
    r = run_cli(cfg, "mirror-oci", "switch", "ngc", first)
    assert r.code == 0
    snap = current_snapshot(state)
    assert snap is not None and snap.id == first and "24.01" in snap.repositories["nvidia/pytorch"].tags
    r = run_cli(cfg, "mirror-oci", "switch", "ngc", "20990101T000000000000Z")
    assert r.code == 1 and "no snapshot '20990101T000000000000Z'" in r.err
    snap = current_snapshot(state)
    assert snap is not None and snap.id == first
