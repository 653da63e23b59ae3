"""dgxie.filemodes without a database: private creation under a loose umask, and the start check."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dgxie.filemodes import loosened, private_dir, private_file, secret_config, sqlite_path


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o002)
    yield
    os.umask(old)


def test_created_private_whatever_the_umask(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "a" / "data"
    private_file(data / "dgxie.db")
    assert (data.stat().st_mode & 0o777, (data / "dgxie.db").stat().st_mode & 0o777) == (0o700, 0o600)
    (data / "dgxie.db").write_text("kept")
    private_file(data / "dgxie.db")  # an existing file is neither truncated nor changed
    assert (data / "dgxie.db").read_text() == "kept"
    assert loosened(data, f"sqlite:///{data / 'dgxie.db'}") == []


def test_loosened_names_each_path_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    private_dir(data)
    gpg = data / "mirrors" / "apt" / "ubuntu" / "gnupg"
    gpg.mkdir(parents=True)
    os.chmod(gpg, 0o755)
    (data / "x.db-wal").write_text("")
    os.chmod(data / "x.db-wal", 0o640)
    cfg = tmp_path / "dgxie.yaml"
    cfg.write_text("")
    os.chmod(cfg, 0o604)
    lines = loosened(data, f"sqlite:///{data / 'x.db'}", cfg)
    assert lines == [f"{cfg}: mode 604 lets other local users read it (holds secrets); chmod 600 it",
                     f"{data / 'x.db-wal'}: mode 640 lets other local users read it (holds secrets); chmod 600 it",
                     f"{gpg}: mode 755 lets other local users read it (holds secrets); chmod 700 it"]


def test_which_paths_count() -> None:
    assert [sqlite_path(u) for u in ("sqlite://", "sqlite:///:memory:", "sqlite:////v/d.db?mode=rwc",
                                     "postgresql://u:p@h/d")] == [None, None, Path("/v/d.db"), None]
    assert secret_config("/etc/dgxie.yaml", "postgresql://u:pw@h/d", False) == Path("/etc/dgxie.yaml")
    assert secret_config("/etc/dgxie.yaml", "postgresql://u@h/d", True) == Path("/etc/dgxie.yaml")
    assert secret_config("/etc/dgxie.yaml", "sqlite:///var/d.db", False) is None
    assert secret_config(None, "postgresql://u:pw@h/d", True) is None
