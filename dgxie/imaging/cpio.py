"""A deterministic cpio "newc" writer (pure codec): what the Linux kernel unpacks as an initramfs.

Format (the kernel's Documentation/driver-api/early-userspace/buffer-format.rst): per entry, the
ASCII magic `070701`, thirteen 8-digit hex fields (ino, mode, uid, gid, nlink, mtime, filesize,
devmajor, devminor, rdevmajor, rdevminor, namesize including the NUL, check = 0), the NUL
terminated name padded to a multiple of 4 bytes (header included), then the data padded likewise;
the archive ends with the entry `TRAILER!!!`.

Deterministic: the same entries give the same bytes, whatever the order they are given in and
whatever the files' owners, inode numbers and times on disk: entries are written sorted by path
(a directory before what it holds), inode numbers count from 1 in that order, every owner is
0:0, every mtime is the one `mtime` given, and nothing is a hardlink (nlink 1, 2 for directories).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


class CpioError(ValueError):
    """An entry cannot be written: unsafe or duplicate path, unsupported file type."""


@dataclass(frozen=True)
class Entry:
    """One archive member. `path` is relative ("usr/bin/sh"); `mode` is a full st_mode (type bits
    and permissions). A regular file's content is `data`, or read from `source` when given; a
    symlink's target is `data`; a device has `rdev` (major, minor)."""

    path: str
    mode: int
    data: bytes = b""
    source: Path | None = None
    rdev: tuple[int, int] = (0, 0)

    def size(self) -> int:
        if stat.S_ISREG(self.mode) and self.source is not None:
            return self.source.stat().st_size
        return len(self.data) if stat.S_ISREG(self.mode) or stat.S_ISLNK(self.mode) else 0


def directory(path: str, perm: int = 0o755) -> Entry:
    return Entry(path, stat.S_IFDIR | perm)


def file(path: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | perm, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | perm, rdev=(major, minor))


def check_path(path: str) -> str:
    """A member path must be relative, normalized and free of `..`."""
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or str(p) != path or path == ".":
        raise CpioError(f"unsafe path in archive: {path!r}")
    return path


def tree_entries(root: Path) -> list[Entry]:
    """Every directory, regular file and symlink under `root` (not `root` itself) as entries, with
    their permission bits; regular files are read from disk when written. Anything else (a device,
    a socket) is refused: a tree is staged from files, devices are added as entries."""
    out: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames) + sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out.append(symlink(rel, os.readlink(full)))
            elif stat.S_ISDIR(st.st_mode):
                out.append(directory(rel, perm))
            elif stat.S_ISREG(st.st_mode):
                out.append(Entry(rel, stat.S_IFREG | perm, source=full))
            else:
                raise CpioError(f"{full}: not a directory, file or symlink")
    return out


def _header(ino: int, mode: int, nlink: int, mtime: int, size: int, rdev: tuple[int, int], name: bytes) -> bytes:
    fields = (ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
    head = MAGIC + b"".join(b"%08X" % f for f in fields) + name + b"\0"
    return head + b"\0" * (-len(head) % 4)


def write(entries: Iterable[Entry], out: BinaryIO, *, mtime: int = 0) -> int:
    """Write `entries` as a newc archive (sorted by path, trailer included) to `out`; returns the
    number of bytes written. CpioError for a duplicate or unsafe path, or an unsupported type."""
    by_path: dict[str, Entry] = {}
    for e in entries:
        if check_path(e.path) in by_path:
            raise CpioError(f"two entries for {e.path!r}")
        if not (stat.S_ISREG(e.mode) or stat.S_ISDIR(e.mode) or stat.S_ISLNK(e.mode) or stat.S_ISCHR(e.mode)
                or stat.S_ISBLK(e.mode)):
            raise CpioError(f"{e.path}: unsupported file type {oct(e.mode)}")
        by_path[e.path] = e
    written = 0
    for ino, path in enumerate(sorted(by_path), start=1):
        e = by_path[path]
        size = e.size()
        nlink = 2 if stat.S_ISDIR(e.mode) else 1
        head = _header(ino, e.mode, nlink, mtime, size, e.rdev, path.encode())
        out.write(head)
        written += len(head)
        if stat.S_ISREG(e.mode) and e.source is not None:
            got = 0
            with e.source.open("rb") as f:
                for block in iter(lambda f=f: f.read(1 << 20), b""):  # type: ignore[misc]
                    out.write(block)
                    got += len(block)
            if got != size:
                raise CpioError(f"{e.source} changed size while being archived")
        elif size:
            out.write(e.data)
        pad = -size % 4
        out.write(b"\0" * pad)
        written += size + pad
    tail = _header(0, 0, 1, 0, 0, (0, 0), TRAILER.encode())
    out.write(tail)
    return written + len(tail)
