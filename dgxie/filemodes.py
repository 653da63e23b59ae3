"""Who may read dgxie's files: the data directory and every secret-bearing file are private.

Created private, whatever the umask: the data directory 0700 (`private_dir`), the SQLite
database 0600 (`private_file`, called by `dgxie.db.make_engine` before SQLite first opens it;
SQLite gives its `-wal`, `-shm` and `-journal` files the database's own mode), the secret key
0600 (`dgxie.crypto`), the APT mirror signing key's GnuPG home 0700 (`dgxie.mirror.apt.signing`).
Public content (mirror and image blobs, served by dgxie to anyone on the provisioning network)
needs no such care; it is private anyway while the data directory is.

Checked at every start (`loosened`, called by the composition root and `dgxie db upgrade`): one
warning line per file or directory an operator made readable by others, the config file included
when it holds a secret (`secret_key`, a database password). dgxie does not chmod
them back (the operator may have a reason); the secret key alone is refused outright
(`dgxie.crypto.load_or_create_key`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from urllib.parse import urlsplit

SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Create `path` (and missing parents) with the leaf 0700; an existing directory is left as is."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists (its parent made by `private_dir`)."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.fchmod(fd, 0o600)
    os.close(fd)


def sqlite_path(database_url: str) -> Path | None:
    """The file of a `sqlite:///PATH` URL (None for PostgreSQL and in-memory SQLite)."""
    if not database_url.startswith("sqlite") or "///" not in database_url:
        return None
    path = database_url.split("///", 1)[1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _open_to_others(path: Path) -> int | None:
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None
    return mode if mode & 0o077 else None


def loosened(data_dir: Path, database_url: str, config: Path | None = None) -> list[str]:
    """One line per private file or directory that other local users can read or enter; `config`
    is the config file when it holds a secret (`secret_key`, a database password)."""
    out: list[str] = []
    wanted: list[tuple[Path, str]] = [(data_dir, "700")] + ([(config, "600")] if config is not None else [])
    db = sqlite_path(database_url)
    if db is not None:
        wanted += [(db.with_name(db.name + s), "600") for s in SQLITE_SUFFIXES]
    wanted += [(home, "700") for home in sorted(data_dir.glob("mirrors/apt/*/gnupg"))]
    for path, want in wanted:
        mode = _open_to_others(path)
        if mode is not None:
            what = "the data directory" if path == data_dir else "holds secrets"
            out.append(f"{path}: mode {mode:o} lets other local users read it ({what}); chmod {want} it")
    return out


def secret_config(path: str | None, database_url: str, has_secret_key: bool) -> Path | None:
    """The config file at `path` if it holds a secret (`secret_key`, a database password), else None."""
    if not path:
        return None
    try:
        db_password = urlsplit(database_url).password
    except ValueError:
        db_password = None
    return Path(path) if has_secret_key or db_password else None
