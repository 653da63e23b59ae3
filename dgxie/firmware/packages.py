"""Firmware packages staged for BMCs to fetch: content-addressed under DATA_DIR/firmware/SHA256/NAME.

Served unauthenticated at `/firmware/packages/SHA256/NAME` (a BMC fetching an ImageURI cannot
send a bearer token); the sha256 in the path is checked at staging time, so a URL names exactly
one file. Staging writes a temporary file and renames it: never a half-written package.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dgxie.errors import Invalid, NotFound
from dgxie.site import Site

SHA_RE = re.compile(r"^[0-9a-f]{64}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


@dataclass(frozen=True)
class Package:
    name: str
    sha256: str
    size: int
    path: Path

    def url(self, site: Site) -> str:
        return f"{site.public_url}/firmware/packages/{self.sha256}/{self.name}"


def root(site: Site) -> Path:
    return site.data_dir / "firmware"


def stage(site: Site, src: Path, sha256: str | None = None, name: str | None = None) -> Package:
    """Copy `src` into the package store, checking `sha256` if given."""
    name = name or src.name
    if not NAME_RE.match(name):
        raise Invalid(f"package name {name!r}: letters, digits and . _ + - only")
    if sha256 is not None and not SHA_RE.match(sha256.lower()):
        raise Invalid("sha256: 64 hex digits")
    store = root(site)
    store.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=store, prefix=".staging-")
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
        digest = h.hexdigest()
        if sha256 is not None and digest != sha256.lower():
            raise Invalid(f"{src.name}: sha256 is {digest}, not {sha256.lower()}")
        dest = store / digest / name
        dest.parent.mkdir(exist_ok=True)
        os.replace(tmp, dest)
    except OSError as exc:
        raise Invalid(f"{src}: {exc.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return Package(name=name, sha256=digest, size=dest.stat().st_size, path=dest)


def find(site: Site, sha256: str, name: str) -> Package:
    if not SHA_RE.match(sha256) or not NAME_RE.match(name):
        raise NotFound("no such package")
    path = root(site) / sha256 / name
    if not path.is_file():
        raise NotFound("no such package")
    return Package(name=name, sha256=sha256, size=path.stat().st_size, path=path)


def list_packages(site: Site) -> list[Package]:
    out: list[Package] = []
    if root(site).is_dir():
        for d in sorted(root(site).iterdir()):
            if d.is_dir() and SHA_RE.match(d.name):
                out.extend(Package(f.name, d.name, f.stat().st_size, f) for f in sorted(d.iterdir()) if f.is_file())
    return out


def remove(site: Site, sha256: str) -> None:
    path = root(site) / sha256
    if not SHA_RE.match(sha256) or not path.is_dir():
        raise NotFound(f"no package {sha256}")
    shutil.rmtree(path)
