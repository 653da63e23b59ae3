"""Open files shared by TFTP transfers: one descriptor per file, however many nodes read it.

A boot storm is thousands of transfers of the same two boot loaders. Each transfer used to open
its own descriptor beside its own socket, so 10,000 nodes needed 20,000 descriptors (the storm
bench lost 7 nodes to "Too many open files" at the hard limit). Transfers read with `os.pread`,
which has no file position, so one descriptor serves them all. A file replaced on disk (another
inode, size or mtime) is opened anew for new transfers; the old descriptor closes with its last
reader.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class _Open:
    fd: int
    size: int
    identity: tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns
    readers: int = 0


class SharedFiles:
    def __init__(self) -> None:
        self._by_path: dict[str, _Open] = {}
        self._by_fd: dict[int, _Open] = {}

    def open(self, path: str) -> tuple[int, int]:
        """(descriptor, size) for reading `path`; give it back with `release`. OSError as os.open."""
        st = os.stat(path)
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        shared = self._by_path.get(path)
        if shared is None or shared.identity != identity:
            fd = os.open(path, os.O_RDONLY)
            try:
                st = os.fstat(fd)  # what was opened, if the file changed between stat and open
            except OSError:
                os.close(fd)
                raise
            shared = _Open(fd, st.st_size, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
            self._by_path[path] = shared
            self._by_fd[fd] = shared
        shared.readers += 1
        return shared.fd, shared.size

    def release(self, fd: int) -> None:
        shared = self._by_fd.get(fd)
        if shared is None:
            return
        shared.readers -= 1
        if shared.readers <= 0:
            del self._by_fd[fd]
            for path, current in list(self._by_path.items()):
                if current is shared:
                    del self._by_path[path]
            os.close(fd)

    @property
    def open_count(self) -> int:
        return len(self._by_fd)
