"""OCI distribution client (pull side) on httpx: auth, tags, manifests, verified resumable blobs.

Implements the read half of the OCI Distribution Specification v1.1 (`/v2/<name>/tags/list`,
`/v2/<name>/manifests/<ref>`, `/v2/<name>/blobs/<digest>`), the Docker token flow (see
`oci.auth`), RFC 9110 range requests to resume a partial blob, and bounded retries with
exponential backoff for transport errors, 429 and 5xx. Every manifest and blob is checked against
its sha256 digest while it streams; nothing unverified reaches the store's published area.

Protocol code: no database, no configuration; the caller passes URL, credentials and a `BlobStore`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from dgxie.blobstore import BlobStore, DigestMismatch
from dgxie.errors import DgxieError, NotFound, Unauthorized, Unavailable
from dgxie.mirror.oci.auth import Credentials, next_link, parse_challenge

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])
MAX_MANIFEST_BYTES = 4 << 20  # the distribution spec lets registries refuse larger manifests
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class CorruptContent(Unavailable):
    """Upstream sent bytes that do not match the digest they were asked for."""


@dataclass(frozen=True)
class Fetched:
    """A manifest (or small blob) as fetched and verified: its bytes, digest and media type."""

    digest: str
    media_type: str
    data: bytes

    def json(self) -> dict[str, Any]:
        doc = json.loads(self.data)
        if not isinstance(doc, dict):
            raise CorruptContent(f"manifest {self.digest} is not a JSON object")
        return doc


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryClient:
    """A pull-only client for one registry (`base_url` like `https://nvcr.io`)."""

    def __init__(self, base_url: str, *, credentials: Credentials | None = None, verify: bool | str = True,
                 timeout: float = 60.0, retries: int = 4, backoff: float = 0.5, max_backoff: float = 8.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.host = urlsplit(self.base).netloc
        self.credentials = credentials
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self._http = httpx.Client(verify=verify, timeout=timeout, follow_redirects=True, transport=transport,
                                  headers={"User-Agent": "dgxie-mirror"})
        self._tokens: dict[str, str] = {}
        self._basic = False

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport, auth, retries -------------------------------------------------------------

    def _sleep(self, attempt: int) -> None:
        time.sleep(min(self.max_backoff, self.backoff * (2 ** attempt)))

    def _auth_header(self, scope: str) -> str | None:
        if scope in self._tokens:
            return f"Bearer {self._tokens[scope]}"
        if self._basic and self.credentials is not None:
            raw = f"{self.credentials.username}:{self.credentials.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        return None

    def _authenticate(self, header: str | None, scope: str) -> None:
        """Answer a 401 challenge: fetch a bearer token from the realm, or switch to Basic."""
        if not header:
            raise Unauthorized(f"registry {self.host}: 401 without a WWW-Authenticate challenge")
        ch = parse_challenge(header)
        if ch.scheme == "basic":
            if self.credentials is None:
                raise Unauthorized(f"registry {self.host} needs credentials (username, password_file)")
            self._basic = True
            return
        if ch.scheme != "bearer" or "realm" not in ch.params:
            raise Unauthorized(f"registry {self.host}: unsupported auth challenge {ch.scheme!r}")
        params = {k: v for k, v in (("service", ch.params.get("service")),
                                    ("scope", ch.params.get("scope") or scope)) if v}
        auth = (httpx.BasicAuth(self.credentials.username, self.credentials.password)
                if self.credentials is not None else None)
        for attempt in range(self.retries + 1):
            try:
                r = self._http.get(ch.params["realm"], params=params, auth=auth)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise Unavailable(f"token server {ch.params['realm']}: {exc.__class__.__name__}") from None
                self._sleep(attempt)
                continue
            if r.status_code in _RETRY_STATUS and attempt < self.retries:
                self._sleep(attempt)
                continue
            break
        if r.status_code in (401, 403):
            who = f"user {self.credentials.username!r}" if self.credentials else "anonymous access"
            raise Unauthorized(f"registry {self.host}: the token server refused {who} ({r.status_code})")
        if r.status_code != 200:
            raise Unavailable(f"registry {self.host}: token server answered {r.status_code}")
        try:
            body = r.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise Unavailable(f"registry {self.host}: token server sent no token")
        self._tokens[scope] = token

    def request(self, method: str, url: str, *, repo: str | None, headers: dict[str, str] | None = None,
                stream: bool = False) -> httpx.Response:
        """Send with auth and bounded retries; the caller closes the (maybe streaming) response."""
        scope = f"repository:{repo}:pull" if repo else ""
        challenged = False
        attempt = 0
        while True:
            h = dict(headers or {})
            auth = self._auth_header(scope)
            if auth:
                h["Authorization"] = auth
            try:
                resp = self._http.send(self._http.build_request(method, url, headers=h), stream=stream)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise Unavailable(f"registry {self.host}: {exc.__class__.__name__}: {exc}") from None
                self._sleep(attempt)
                attempt += 1
                continue
            if resp.status_code == 401:
                resp.close()
                if challenged:
                    who = f"user {self.credentials.username!r}" if self.credentials else "anonymous access"
                    raise Unauthorized(f"registry {self.host} refused {who} for {repo or '/v2/'} (401)")
                challenged = True
                self._tokens.pop(scope, None)
                self._authenticate(resp.headers.get("www-authenticate"), scope)
                continue
            if resp.status_code in _RETRY_STATUS and attempt < self.retries:
                resp.close()
                self._sleep(attempt)
                attempt += 1
                continue
            return resp

    def _check(self, resp: httpx.Response, what: str) -> None:
        if resp.status_code == 404:
            raise NotFound(f"registry {self.host}: {what} not found")
        if resp.status_code == 403:
            raise Unauthorized(f"registry {self.host}: access to {what} denied (403)")
        if resp.status_code >= 300:
            raise Unavailable(f"registry {self.host}: {what}: HTTP {resp.status_code}")

    # -- API ----------------------------------------------------------------------------------

    def ping(self) -> None:
        """`GET /v2/`: checks reachability and credentials."""
        r = self.request("GET", f"{self.base}/v2/", repo=None)
        self._check(r, "/v2/")

    def list_tags(self, repo: str, *, page_size: int = 1000, max_pages: int = 1000) -> list[str]:
        """All tags of `repo`, following `Link: <...>; rel="next"` pagination (bounded)."""
        url: str | None = f"{self.base}/v2/{repo}/tags/list?n={page_size}"
        tags: list[str] = []
        for _ in range(max_pages):
            if url is None:
                break
            r = self.request("GET", url, repo=repo)
            self._check(r, f"repository {repo}")
            try:
                page = r.json().get("tags") or []
            except (ValueError, AttributeError):
                raise Unavailable(f"registry {self.host}: tags list of {repo} is not JSON") from None
            tags.extend(t for t in page if isinstance(t, str))
            nxt = next_link(r.headers.get("link"))
            url = urljoin(url, nxt) if nxt else None
        return sorted(set(tags))

    def get_manifest(self, repo: str, ref: str) -> Fetched:
        """A manifest or index by tag or digest, verified against the digest it is known by."""
        r = self.request("GET", f"{self.base}/v2/{repo}/manifests/{ref}", repo=repo,
                         headers={"Accept": MANIFEST_ACCEPT})
        self._check(r, f"manifest {repo}:{ref}")
        data = r.content
        if len(data) > MAX_MANIFEST_BYTES:
            raise CorruptContent(f"registry {self.host}: manifest {repo}:{ref} is larger than 4 MiB")
        digest = sha256_digest(data)
        expected = ref if ref.startswith("sha256:") else r.headers.get("docker-content-digest")
        if expected and expected.startswith("sha256:") and expected != digest:
            raise CorruptContent(f"registry {self.host}: manifest {repo}:{ref} hashes to {digest}, not {expected}")
        media_type = r.headers.get("content-type", "").split(";")[0].strip()
        try:
            doc = json.loads(data)
            if isinstance(doc, dict) and isinstance(doc.get("mediaType"), str):
                media_type = doc["mediaType"]
        except ValueError:
            raise CorruptContent(f"registry {self.host}: manifest {repo}:{ref} is not JSON") from None
        return Fetched(digest=digest, media_type=media_type, data=data)

    def get_small_blob(self, repo: str, digest: str, *, limit: int = MAX_MANIFEST_BYTES) -> Fetched:
        """A small blob (an image config) in memory, verified."""
        r = self.request("GET", f"{self.base}/v2/{repo}/blobs/{digest}", repo=repo)
        self._check(r, f"blob {digest} of {repo}")
        if len(r.content) > limit or sha256_digest(r.content) != digest:
            raise CorruptContent(f"registry {self.host}: blob {digest} of {repo} does not match its digest")
        return Fetched(digest=digest, media_type=r.headers.get("content-type", ""), data=r.content)

    def fetch_blob(self, repo: str, digest: str, store: BlobStore, *, size: int | None = None,
                   on_bytes: Callable[[int], None] | None = None) -> Path:
        """Stream a blob into `store`, verifying its sha256 as it arrives; resume a partial one with
        `Range: bytes=N-` (RFC 9110 section 14) and retry transport errors (bounded)."""
        if store.has(digest):
            return store.path(digest)
        url = f"{self.base}/v2/{repo}/blobs/{digest}"
        last = "no attempt"
        for attempt in range(self.retries + 1):
            offset = store.partial_size(digest)
            if size is not None and offset >= size:
                store.partial_path(digest).unlink(missing_ok=True)
                offset = 0
            resp = self.request("GET", url, repo=repo, headers={"Range": f"bytes={offset}-"} if offset else {},
                                stream=True)
            try:
                if resp.status_code == 416:
                    store.partial_path(digest).unlink(missing_ok=True)
                    continue
                self._check(resp, f"blob {digest} of {repo}")
                resume = offset > 0 and resp.status_code == 206 and \
                    resp.headers.get("content-range", "").startswith(f"bytes {offset}-")
                remaining = None if size is None else size - (offset if resume else 0)
                return store.write(digest, _bounded(resp.iter_bytes(1 << 20), remaining, on_bytes), resume=resume)
            except DigestMismatch as exc:
                raise CorruptContent(f"registry {self.host}: blob {digest} of {repo} hashed to "
                                     f"sha256:{exc.actual}; refused") from None
            except _Oversize:
                store.partial_path(digest).unlink(missing_ok=True)
                raise CorruptContent(f"registry {self.host}: blob {digest} of {repo} is longer than its "
                                     f"descriptor's {size} bytes; refused") from None
            except httpx.TransportError as exc:
                last = f"{exc.__class__.__name__}: {exc}"
                self._sleep(attempt)
            finally:
                resp.close()
        raise Unavailable(f"registry {self.host}: blob {digest} of {repo}: gave up after "
                          f"{self.retries + 1} attempts ({last})")


class _Oversize(DgxieError):
    pass


def _bounded(chunks: Iterator[bytes], limit: int | None, on_bytes: Callable[[int], None] | None) -> Iterator[bytes]:
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if limit is not None and seen > limit:
            raise _Oversize("oversize")
        if on_bytes is not None:
            on_bytes(len(chunk))
        yield chunk
