"""Reading the raw facts bundle the agent uploads: a plain (uncompressed) tar of known files (pure).

Refused, each with one message (`Invalid`, or `TooLarge` for size): anything not a tar; a member
that is not a regular file (directories, links, devices, sparse files); a name outside `MEMBERS`
(no directories, no `..`; a leading `./`, as `tar -C DIR -cf - .` writes, is accepted, and so is
that command's `./` entry); a name twice; no `agent.txt`; more than `max_bytes` in the upload.
"""

from __future__ import annotations

import io
import tarfile

from dgxie.errors import Invalid, TooLarge

MEMBERS = ("agent.txt", "dmidecode.txt", "cpuinfo.txt", "meminfo.txt", "lsblk.json", "block-sysfs.txt",
           "block-serial.txt", "net.txt", "lspci.txt", "ipmi-lan.txt")


def read_tar(data: bytes, *, max_bytes: int) -> dict[str, bytes]:
    """{member name: contents} of a facts bundle (see the module doc for what is refused)."""
    if len(data) > max_bytes:
        raise TooLarge(f"facts bundle is {len(data)} bytes, more than the {max_bytes} allowed")
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if member.isdir() and name in ("", "."):
                    continue
                if name not in MEMBERS:
                    raise Invalid(f"facts bundle member {member.name!r} is not one of {', '.join(MEMBERS)}")
                if not member.isreg() or member.issparse():
                    raise Invalid(f"facts bundle member {member.name!r} is not a regular file")
                if name in out:
                    raise Invalid(f"facts bundle has {name} twice")
                if member.size > max_bytes - sum(len(v) for v in out.values()):
                    raise TooLarge(f"facts bundle members are more than the {max_bytes} bytes allowed")
                f = tar.extractfile(member)
                out[name] = f.read() if f is not None else b""
    except tarfile.TarError as exc:
        raise Invalid(f"facts bundle is not a readable tar archive ({exc})") from None
    if "agent.txt" not in out:
        raise Invalid("facts bundle has no agent.txt")
    return out
