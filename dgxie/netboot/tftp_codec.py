"""TFTP packets, option negotiation and path confinement (pure; no sockets).

RFC 1350 (the protocol), RFC 2347 (option extension, OACK, error 8), RFC 2348 (blksize),
RFC 2349 (timeout, tsize), RFC 7440 (windowsize).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6

# RFC 1350 error codes (+ 8 from RFC 2347)
E_UNDEFINED, E_NOT_FOUND, E_ACCESS, E_DISK_FULL, E_ILLEGAL_OP, E_UNKNOWN_TID, E_EXISTS, E_NO_USER, E_OPTION = range(9)

MIN_BLKSIZE, MAX_BLKSIZE = 8, 65464  # RFC 2348
DEFAULT_BLKSIZE = 512
MAX_WINDOW = 64  # RFC 7440 allows 65535; more gains nothing and floods small NIC buffers
MAX_FILENAME = 255

_ACK_DATA = struct.Struct("!HH")


class TftpError(Exception):
    """A request that gets an ERROR packet back (code, message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Request:
    opcode: int  # RRQ or WRQ
    filename: str
    mode: str  # netascii | octet | mail (lowercased)
    options: dict[str, str]  # option names lowercased, last one wins


def parse_request(data: bytes) -> Request:
    """Decode an RRQ/WRQ: opcode, then NUL-terminated filename, mode, option/value pairs."""
    if len(data) < 4:
        raise TftpError(E_ILLEGAL_OP, "truncated packet")
    opcode = int.from_bytes(data[:2], "big")
    if opcode not in (RRQ, WRQ):
        raise TftpError(E_ILLEGAL_OP, f"opcode {opcode} is not a request")
    if not data.endswith(b"\0"):
        raise TftpError(E_ILLEGAL_OP, "request fields must end with NUL")
    fields = data[2:-1].split(b"\0")
    if len(fields) < 2 or len(fields) % 2:
        raise TftpError(E_ILLEGAL_OP, "malformed request fields")
    try:
        parts = [f.decode("ascii") for f in fields]
    except UnicodeDecodeError:
        raise TftpError(E_ILLEGAL_OP, "request fields must be ASCII") from None
    filename, mode = parts[0], parts[1].lower()
    if not filename or len(filename) > MAX_FILENAME:
        raise TftpError(E_ILLEGAL_OP, "bad filename length")
    if mode not in ("netascii", "octet", "mail"):
        raise TftpError(E_ILLEGAL_OP, f"unknown mode {mode!r}")
    options = {parts[i].lower(): parts[i + 1] for i in range(2, len(parts), 2)}
    return Request(opcode, filename, mode, options)


def encode_request(opcode: int, filename: str, mode: str = "octet", options: dict[str, str] | None = None) -> bytes:
    out = opcode.to_bytes(2, "big") + filename.encode() + b"\0" + mode.encode() + b"\0"
    for k, v in (options or {}).items():
        out += k.encode() + b"\0" + v.encode() + b"\0"
    return out


def encode_data(block: int, payload: bytes) -> bytes:
    return _ACK_DATA.pack(DATA, block & 0xFFFF) + payload


def encode_ack(block: int) -> bytes:
    return _ACK_DATA.pack(ACK, block & 0xFFFF)


def encode_error(code: int, message: str) -> bytes:
    return _ACK_DATA.pack(ERROR, code) + message.encode("ascii", "replace")[:200] + b"\0"


def encode_oack(options: dict[str, str]) -> bytes:
    out = OACK.to_bytes(2, "big")
    for k, v in options.items():
        out += k.encode() + b"\0" + v.encode() + b"\0"
    return out


def parse_reply(data: bytes) -> tuple[int, int, bytes]:
    """A client's ACK/ERROR (or any DATA): (opcode, block-or-code, rest). Raises TftpError if short."""
    if len(data) < 4:
        raise TftpError(E_ILLEGAL_OP, "truncated packet")
    opcode, number = _ACK_DATA.unpack_from(data)
    return opcode, number, data[4:]


@dataclass(frozen=True)
class Negotiated:
    blksize: int = DEFAULT_BLKSIZE
    timeout: float = 1.0
    windowsize: int = 1
    oack: dict[str, str] | None = None  # None: no options accepted -> plain RFC 1350 transfer


def negotiate(options: dict[str, str], *, file_size: int, max_blksize: int = MAX_BLKSIZE,
              default_timeout: float = 1.0) -> Negotiated:
    """Accept the options we support (RFC 2347): unknown or out-of-range ones are left out of the
    OACK, which per RFC 2347 means the client falls back to the default for them."""
    acc: dict[str, str] = {}
    blksize, timeout, window = DEFAULT_BLKSIZE, default_timeout, 1
    if "blksize" in options and options["blksize"].isdigit():
        v = int(options["blksize"])
        if v >= MIN_BLKSIZE:
            blksize = min(v, max_blksize, MAX_BLKSIZE)
            acc["blksize"] = str(blksize)
    if "timeout" in options and options["timeout"].isdigit():
        v = int(options["timeout"])
        if 1 <= v <= 255:
            timeout = float(v)
            acc["timeout"] = str(v)
    if "tsize" in options and options["tsize"].isdigit():
        acc["tsize"] = str(file_size)
    if "windowsize" in options and options["windowsize"].isdigit():
        v = int(options["windowsize"])
        if 1 <= v <= 65535:
            window = min(v, MAX_WINDOW)
            acc["windowsize"] = str(window)
    return Negotiated(blksize, timeout, window, acc or None)


def confine(roots: list[Path], filename: str, files: dict[str, Path] | None = None) -> Path:
    """The file `filename` names under the first root that has it, else in `files` (exact names
    the operator trusts, e.g. Debian's ipxe.efi, itself a symlink to /boot), or TftpError.

    Refused (access violation): absolute paths, `..` components, NUL/backslash, and anything
    whose real path (symlinks resolved) leaves its root. Missing: file not found.
    """
    name = filename
    if "\\" in name or "\0" in name:
        raise TftpError(E_ACCESS, "illegal character in filename")
    if name.startswith("/"):
        raise TftpError(E_ACCESS, "absolute paths are refused")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise TftpError(E_ACCESS, "path leaves the TFTP root")
    for root in roots:
        real_root = os.path.realpath(root)
        candidate = os.path.realpath(os.path.join(real_root, *parts))
        if os.path.commonpath([real_root, candidate]) != real_root:
            if os.path.lexists(os.path.join(real_root, *parts)):
                raise TftpError(E_ACCESS, "symlink leaves the TFTP root")
            continue
        if os.path.isfile(candidate):
            return Path(candidate)
    fixed = (files or {}).get("/".join(parts))
    if fixed is not None and fixed.is_file():
        return fixed
    raise TftpError(E_NOT_FOUND, "file not found")
