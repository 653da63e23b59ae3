"""DGXIE's machines.json and env file, read as dgxie images and profiles (pure: no database).

DGXIE (NVIDIA DeepOps' PXE container, `src/containers/dgxie` at deepops ad241ba7^) answered
pixiecore's API, `GET /v1/boot/<mac>`: the FIRST entry of machines.json, in file order, whose
`mac` regex `re.match`es the MAC (lower-case, colon-separated) boots its `kernel`, `initrd` list
and `cmdline`, with `$HTTP_PORT` replaced by the container's HTTP_PORT (default 13370). In the
cmdline, `{{ URL "x" }}` is pixiecore's template function: a URL, through pixiecore, that serves
x. `http://localhost:$HTTP_PORT/...` names DGXIE's own nginx (root /www: the DGX ISO under /iso,
the preseed as /dgx.seed).

Each entry becomes an image and a profile of the same name (the entry's slug):
- the image's files are the kernel, the initrd and each file a `{{ URL }}` names; each comes from
  DGXIE's HTTP root on disk (`--files DIR`: stored in dgxie's image store), or is fetched by dgxie
  on first use and then kept (`--proxy URL`: DGXIE's server, still running; any other host's URL
  always); the cmdline names them as `{public_url}/images/NAME/FILE`;
- the profile's template is `external` (the installer brings its own config, as under DGXIE) and
  its var `mac_match` is the entry's regex: a node enrolled without a profile gets the first
  profile whose `mac_match` matches, in the file's order, which is the profile DGXIE booted.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DEFAULT_HTTP_PORT = "13370"  # DGXIE's `start`: HTTP_PORT=${HTTP_PORT:-13370}
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})
_URL_FUNC = re.compile(r"""\{\{\s*URL\s+"([^"]*)"\s*\}\}""")
_LITERAL_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_SERVED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class FileRef:
    """One file an entry boots: its name under /images/NAME/, its role, and where it lives:
    `local` is its path under DGXIE's HTTP root (a localhost URL), else `url` is another host's."""

    served: str
    role: str  # kernel | initrd | file
    local: str | None
    url: str


@dataclass
class Machine:
    key: str
    slug: str
    mac_match: str
    message: str
    cmdline: str  # {{ URL }} and $HTTP_PORT translated; files as {public_url}/images/SLUG/FILE
    files: list[FileRef] = field(default_factory=list)

    @property
    def kernel(self) -> FileRef:
        return next(f for f in self.files if f.role == "kernel")

    @property
    def initrd(self) -> FileRef | None:
        return next((f for f in self.files if f.role == "initrd"), None)


def parse_env(text: str) -> dict[str, str]:
    """DGXIE's `config/pxe/env` (docker-compose env file): KEY=VALUE lines, # comments, optional quotes."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def slug_of(key: str) -> str:
    """A dgxie name for entry KEY: lower-case, [a-z0-9._-], starting with a letter or digit, at most 64."""
    return re.sub(r"[^a-z0-9._-]+", "-", key.lower()).strip("-._")[:64].rstrip("-._") or "dgxie"


def _ref(url: str, role: str, http_port: str) -> FileRef:
    """A translated URL as a FileRef; ValueError names what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    served = posixpath.basename(parts.path)
    if not _SERVED.match(served):
        raise ValueError(f"{url!r}: its file name {served!r} cannot be served (A-Z a-z 0-9 . _ -)")
    if parts.hostname in LOCAL_HOSTS:
        if str(parts.port or 80) != http_port:
            raise ValueError(f"{url!r} is on this host but not on DGXIE's HTTP_PORT {http_port}")
        local = posixpath.normpath(parts.path.lstrip("/"))
        if local.startswith("..") or local == ".":
            raise ValueError(f"{url!r} points outside DGXIE's HTTP root")
        return FileRef(served, role, local, url)
    return FileRef(served, role, None, url)


def parse_machine(key: str, entry: Any, http_port: str) -> Machine:
    """One machines.json entry; ValueError with what is wrong (the caller adds where)."""
    if not isinstance(entry, dict):
        raise ValueError("expected an object")
    if not isinstance(entry.get("mac"), str) or not isinstance(entry.get("kernel"), str):
        raise ValueError("a DGXIE machine needs 'mac' and 'kernel' strings")
    try:
        re.compile(entry["mac"])
    except re.error as exc:
        raise ValueError(f"mac is not a valid regex ({exc})") from None
    initrd = entry.get("initrd", [])
    initrd = [initrd] if isinstance(initrd, str) else initrd
    if not isinstance(initrd, list) or not all(isinstance(i, str) for i in initrd):
        raise ValueError("initrd must be a URL or a list of URLs")
    if len(initrd) > 1:
        raise ValueError(f"{len(initrd)} initrds: dgxie boots one initrd per image (concatenate them into one)")
    slug = slug_of(key)

    def port(text: str) -> str:
        return text.replace("$HTTP_PORT", http_port)

    m = Machine(key=key, slug=slug, mac_match=entry["mac"], message=str(entry.get("message", "")), cmdline="")
    m.files.append(_ref(port(entry["kernel"]), "kernel", http_port))
    m.files.extend(_ref(port(u), "initrd", http_port) for u in initrd)

    def url_func(match: re.Match[str]) -> str:
        ref = _ref(port(match.group(1)), "file", http_port)
        if not any(f.served == ref.served and f.url == ref.url for f in m.files):
            m.files.append(ref)
        return "{public_url}/images/" + slug + "/" + ref.served

    m.cmdline = _URL_FUNC.sub(url_func, port(str(entry.get("cmdline", ""))))
    names = [f.served for f in m.files]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"two different files would be served as {', '.join(dup)}")
    if "{{" in m.cmdline:
        raise ValueError("its cmdline has a template call other than {{ URL \"...\" }}")
    return m


def shadowed(machines: list[Machine]) -> list[str]:
    """Warnings for entries DGXIE never booted: a literal-MAC entry an earlier regex already matches."""
    out = []
    for j, m in enumerate(machines):
        literal = m.mac_match.lower()
        if not _LITERAL_MAC.match(literal):
            continue
        for earlier in machines[:j]:
            if re.match(earlier.mac_match, literal):
                out.append(f"entry {m.key!r}: never chosen by MAC, entry {earlier.key!r} ({earlier.mac_match}) "
                           f"matches {literal} first, as it did under DGXIE; enroll with --profile {m.slug} to use it")
                break
    return out
