"""What a dynamically linked ELF program needs to run (pure codec): its interpreter (PT_INTERP),
the libraries it names (DT_NEEDED) and its own search path (DT_RUNPATH / DT_RPATH).

Only 64-bit little-endian ELF is read (x86_64 and arm64 Linux, what dgxie builds); the initramfs
builder (initramfs.py) resolves the names in the chroot, transitively. Reference: the System V
gABI "ELF header", "Program header" and "Dynamic section" chapters. Reading the headers never runs
the program (unlike `ldd`), so a chroot of another architecture is read the same way.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 1, 5, 15, 29


class ElfError(ValueError):
    """An ELF file that is truncated, malformed or of a class this reader does not handle."""


@dataclass(frozen=True)
class ElfInfo:
    interpreter: str | None  # e.g. /lib64/ld-linux-x86-64.so.2; None for a static program or a library
    needed: tuple[str, ...]  # DT_NEEDED, in order
    runpath: tuple[str, ...]  # DT_RUNPATH (or DT_RPATH when there is no RUNPATH), `$ORIGIN` unexpanded


def is_elf(head: bytes) -> bool:
    return head[:4] == b"\x7fELF"


def _cstr(data: bytes, off: int) -> str:
    end = data.find(b"\0", off)
    if off < 0 or off >= len(data) or end < 0:
        raise ElfError("string outside the file")
    return data[off:end].decode("utf-8", errors="replace")


def parse(data: bytes) -> ElfInfo:
    """The interpreter, needed libraries and run path of the ELF image `data`."""
    if not is_elf(data) or len(data) < 64:
        raise ElfError("not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise ElfError("only 64-bit little-endian ELF is supported")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    if phentsize < 56 or phoff + phnum * phentsize > len(data):
        raise ElfError("program headers outside the file")
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    interp: str | None = None
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_INTERP:
            interp = _cstr(data, p_offset)
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return ElfInfo(interp, (), ())
    tags: list[tuple[int, int]] = []
    off, size = dynamic
    for pos in range(off, min(off + size, len(data) - 15), 16):
        tag, val = struct.unpack_from("<qQ", data, pos)
        if tag == DT_NULL:
            break
        tags.append((tag, val))
    strtab_vaddr = next((v for t, v in tags if t == DT_STRTAB), None)
    if strtab_vaddr is None:
        raise ElfError("dynamic section without a string table")
    strtab = _file_offset(loads, strtab_vaddr)
    needed = tuple(_cstr(data, strtab + v) for t, v in tags if t == DT_NEEDED)
    runpath = [_cstr(data, strtab + v) for t, v in tags if t == DT_RUNPATH] or \
        [_cstr(data, strtab + v) for t, v in tags if t == DT_RPATH]
    return ElfInfo(interp, needed, tuple(d for rp in runpath for d in rp.split(":") if d))


def _file_offset(loads: list[tuple[int, int, int]], vaddr: int) -> int:
    for seg_vaddr, seg_off, seg_size in loads:
        if seg_vaddr <= vaddr < seg_vaddr + seg_size:
            return vaddr - seg_vaddr + seg_off
    raise ElfError(f"address {vaddr:#x} is in no loaded segment")
