"""Read-only OCI distribution API at `/v2/` (OCI Distribution Spec v1.1, pull endpoints), so
containerd, docker and skopeo can use dgxie as a registry mirror.

Unauthenticated, like the APT mirror: it serves only what the operator chose to mirror. Errors
use the spec's body `{"errors": [{"code", "message", "detail"}]}`. containerd's `?ns=HOST`
selects the mirror of that upstream registry (`dgxie.mirror.oci.store.OciReader.repo`). Push
endpoints answer 405 UNSUPPORTED.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from dgxie.api.deps import get_ctx
from dgxie.errors import DgxieError
from dgxie.mirror.oci.store import OciReader, UnknownBlob, UnknownManifest, UnknownName
from dgxie.sections import OCI_REPOSITORY

router = APIRouter(tags=["registry"], include_in_schema=False)

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_API = {"Docker-Distribution-API-Version": "registry/2.0"}


def error(status: int, code: str, message: str, detail: object = None) -> JSONResponse:
    body = {"errors": [{"code": code, "message": message, "detail": detail or {}}]}
    return JSONResponse(body, status_code=status, headers=_API)


def _reader(request: Request) -> OciReader:
    return get_ctx(request).oci


def _known(exc: DgxieError) -> JSONResponse:
    if isinstance(exc, UnknownName):
        return error(404, "NAME_UNKNOWN", exc.detail)
    if isinstance(exc, UnknownManifest):
        return error(404, "MANIFEST_UNKNOWN", exc.detail)
    if isinstance(exc, UnknownBlob):
        return error(404, "BLOB_UNKNOWN", exc.detail)
    return error(exc.status if exc.status < 500 else 503, "UNAVAILABLE", exc.detail)


@router.api_route("/v2/", methods=["GET", "HEAD"])
def base() -> Response:
    return JSONResponse({}, headers=_API)


@router.api_route("/v2/{name:path}/tags/list", methods=["GET"])
def tags_list(request: Request, name: str, ns: str | None = None, n: int | None = None,
              last: str | None = None) -> Response:
    if not OCI_REPOSITORY.match(name):
        return error(400, "NAME_INVALID", f"invalid repository name {name!r}")
    try:
        tags = _reader(request).tags(name, ns)
    except DgxieError as exc:
        return _known(exc)
    if last:
        tags = [t for t in tags if t > last]
    headers = dict(_API)
    if n is not None and 0 <= n < len(tags):
        tags = tags[:n]
        if tags:
            headers["Link"] = f'</v2/{name}/tags/list?n={n}&last={tags[-1]}>; rel="next"'
    return JSONResponse({"name": name, "tags": tags}, headers=headers)


@router.api_route("/v2/{name:path}/manifests/{reference}", methods=["GET", "HEAD"])
def manifest(request: Request, name: str, reference: str, ns: str | None = None) -> Response:
    if not OCI_REPOSITORY.match(name):
        return error(400, "NAME_INVALID", f"invalid repository name {name!r}")
    if not (_TAG.match(reference) or _DIGEST.match(reference)):
        return error(400, "MANIFEST_INVALID" if ":" not in reference else "DIGEST_INVALID",
                     f"invalid reference {reference!r}")
    try:
        hit = _reader(request).manifest(name, reference, ns)
        data = hit.path.read_bytes()
    except DgxieError as exc:
        return _known(exc)
    except FileNotFoundError:
        return error(404, "MANIFEST_UNKNOWN", f"manifest {hit.digest} is missing from the store")
    headers = _API | {"Docker-Content-Digest": hit.digest, "Content-Length": str(len(data)),
                      "Content-Type": hit.media_type, "ETag": f'"{hit.digest}"'}
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers)
    return Response(data, status_code=200, headers=headers, media_type=hit.media_type)


@router.api_route("/v2/{name:path}/blobs/{digest}", methods=["GET", "HEAD"])
def blob(request: Request, name: str, digest: str, ns: str | None = None) -> Response:
    if not OCI_REPOSITORY.match(name):
        return error(400, "NAME_INVALID", f"invalid repository name {name!r}")
    if not _DIGEST.match(digest):
        return error(400, "DIGEST_INVALID", f"invalid digest {digest!r} (sha256 only)")
    try:
        path = _reader(request).blob(name, digest, ns)
    except DgxieError as exc:
        return _known(exc)
    headers = _API | {"Docker-Content-Digest": digest, "ETag": f'"{digest}"',
                      "Cache-Control": "max-age=31536000, immutable"}
    # FileResponse answers HEAD without a body and honours Range (206, 416) itself.
    return FileResponse(path, media_type="application/octet-stream", headers=headers)


@router.api_route("/v2/{rest:path}", methods=["POST", "PUT", "PATCH", "DELETE"])
def push(rest: str) -> Response:
    return error(405, "UNSUPPORTED", "this registry is a read-only mirror")
