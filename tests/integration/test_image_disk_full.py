"""`dgxie image add` on a full disk: one clear error, and the disk is as free afterwards as before
(issue 12, item 9). A real full filesystem: a 2 MiB tmpfs mounted as the data directory (the tests
run as root; skipped, saying so, where mounting is not permitted)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dgxie.blobstore import STALE_PARTIAL_SECONDS


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"  # the data_dir of the `cli` fixture's config
    data.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "dgxie-image-tmpfs", str(data)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}): no full disk to test on")
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)
        shutil.rmtree(data, ignore_errors=True)


def _used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_image_add_out_of_disk_leaves_nothing_and_gc_sweeps_stale_partials(cli: Any, tiny_data_dir: Path,
                                                                           tmp_path: Path) -> None:
    data = tiny_data_dir
    small, big = tmp_path / "vmlinuz", tmp_path / "initrd.img"
    small.write_bytes(os.urandom(700 << 10))  # fits
    big.write_bytes(os.urandom(3 << 20))  # does not
    assert cli("image", "list").code == 0  # first start: the secret key, the stores
    before, files_before = _used(data), _files(data)

    r = cli("image", "add", "img", "--kernel", str(small), "--initrd", str(big))
    assert r.code == 1 and r.err.count("\n") == 1, r.err
    assert r.err.startswith(f"dgxie: error: initrd {big}: No space left on device"), r.err
    assert _files(data) == files_before  # no partial initrd, and the kernel this add stored is gone too
    assert _used(data) == before
    assert "img" not in cli("image", "list").out

    part = data / "images" / "partial"  # what a killed `image add` leaves: swept once stale, by age only
    stale, live = part / ("a" * 64), part / ("b" * 64)
    stale.write_bytes(os.urandom(500 << 10))
    live.write_bytes(os.urandom(100 << 10))
    then = time.time() - STALE_PARTIAL_SECONDS - 60
    os.utime(stale, (then, then))
    r = cli("mirror", "gc")
    assert r.code == 0, r.err
    assert not stale.exists() and live.exists()

    big.write_bytes(os.urandom(64 << 10))  # with room, the same add works
    r = cli("image", "add", "img", "--kernel", str(small), "--initrd", str(big))
    assert r.code == 0, r.err
