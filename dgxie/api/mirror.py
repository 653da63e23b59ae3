"""Unauthenticated read API for APT clients: `/mirror/apt/NAME/...` (dists, pool, by-hash).

Each request resolves the mirror's `current` symlink once (`apt.tree.resolve`), so it reads one
whole snapshot even while a sync publishes the next. Files are served with FileResponse (Range,
HEAD, Last-Modified).
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from dgxie.api.deps import get_site
from dgxie.errors import NotFound
from dgxie.mirror.apt.tree import resolve
from dgxie.mirror.kind import mirror_dir
from dgxie.validation import NAME_RE

router = APIRouter(tags=["mirror"])

_TYPES = {".gpg": "application/pgp-keys", ".deb": "application/vnd.debian.binary-package",
          ".gz": "application/gzip", ".xz": "application/x-xz"}


@router.api_route("/mirror/apt/{name}/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
def apt_file(name: str, path: str, request: Request) -> Response:
    if not NAME_RE.match(name) or not path or any(p in ("", ".", "..") for p in path.split("/")):
        raise NotFound("no such file")
    root = mirror_dir(get_site(request).data_dir, "apt", name)
    full = resolve(root, path)
    ext = os.path.splitext(path)[1]
    return FileResponse(full, media_type=_TYPES.get(ext, "application/octet-stream" if ext else "text/plain"))
