"""Mirror sections: the keys every mirror has, and each kind's own (APT, OCI), fully typed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from dgxie.sections.common import Strict, duration


class MirrorConfig(Strict):
    """Keys every mirror has; `AptMirrorConfig` / `OciMirrorConfig` add their kind's keys, and the
    mirror service hands that same object to the kind (`dgxie.mirror.kind.MirrorKind`)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)
    kind: Literal["apt", "oci"]
    keep_snapshots: int = Field(default=3, ge=1)
    interval: float | None = None  # scheduled sync every N seconds (also "6h", "30m", "1d")

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, v: Any) -> float | None:
        d = duration(v)
        if d is not None and d < 60:
            raise ValueError("interval must be at least 60 seconds")
        return d


_APT_WORD = r"^[A-Za-z0-9][A-Za-z0-9._/+-]*$"
# The `?` terms of an APT filter (matched by dgxie.mirror.apt.repository.matches).
_FILTER_TERM = re.compile(r"^\?(essential|priority\((required|important|standard|optional|extra)\))$")


class AptMirrorConfig(MirrorConfig):
    """Kind `apt` (docs/mirrors.md)."""

    kind: Literal["apt"]
    url: str
    suites: list[Annotated[str, Field(pattern=_APT_WORD)]] = Field(min_length=1)
    components: list[Annotated[str, Field(pattern=_APT_WORD)]] = ["main"]
    architectures: list[Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]] = ["amd64"]
    keyring: Path
    # package names, fnmatch patterns, `?essential`, `?priority(P)`; their dependency closure is kept
    filter: list[str] = []

    @field_validator("filter")
    @classmethod
    def _filter(cls, v: list[str]) -> list[str]:
        for term in v:
            if term.startswith("?") and not _FILTER_TERM.match(term):
                raise ValueError(f"unknown filter term {term!r} (use ?essential or ?priority(required|important|"
                                 "standard|optional|extra))")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL ({v!r})")
        return v.rstrip("/")

    @field_validator("keyring")
    @classmethod
    def _keyring(cls, v: Path) -> Path:
        if not v.is_absolute():
            raise ValueError(f"the keyring must be an absolute path (got {str(v)!r})")
        return v

    @property
    def upstream(self) -> str:
        return self.url


# A repository name (OCI distribution spec, "name"): also what the /v2/ API accepts.
OCI_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_OCI_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9.]+)?$")


class TagRules(Strict):
    """Which tags to mirror: `include` (any matches, `re.search`; empty = all), then `exclude`
    (none matches), then the `keep_newest` newest by image `created` time (dgxie.mirror.oci.rules)."""

    include: list[str] = []
    exclude: list[str] = []
    keep_newest: int | None = Field(default=None, ge=1)

    @field_validator("include", "exclude")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for pat in v:
            try:
                re.compile(pat)
            except re.error as exc:
                raise ValueError(f"{pat!r} is not a regular expression ({exc})") from None
        return v


class OciMirrorConfig(MirrorConfig):
    """Kind `oci` (docs/mirrors-oci.md). Example::

        - name: ngc
          kind: oci
          registry: https://nvcr.io
          username: $oauthtoken
          password_file: /etc/dgxie/ngc-key
          repositories: [nvidia/pytorch]
          tags: {include: ['^24\\.'], exclude: ['-igpu$'], keep_newest: 3}
          platforms: [linux/amd64]
    """

    kind: Literal["oci"]
    registry: str
    username: str | None = None
    password_file: Path | None = None
    repositories: list[str] = Field(min_length=1)
    tags: TagRules = TagRules()
    platforms: list[str] = []
    insecure: bool = False  # skip TLS verification (an https registry with a self-signed cert)
    ca_file: Path | None = None  # or trust this CA bundle
    timeout: float = Field(default=60.0, gt=0)
    retries: int = Field(default=4, ge=0, le=20)
    concurrency: int = Field(default=4, ge=1, le=32)  # blobs downloaded at once

    @field_validator("registry")
    @classmethod
    def _registry(cls, v: str) -> str:
        if "://" not in v:
            v = "https://" + v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise ValueError(f"{v!r} is not a registry URL like https://nvcr.io")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("repositories")
    @classmethod
    def _repos(cls, v: list[str]) -> list[str]:
        for r in v:
            if not OCI_REPOSITORY.match(r):
                raise ValueError(f"{r!r} is not a repository name like nvidia/pytorch")
        return v

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, v: list[str]) -> list[str]:
        for p in v:
            if not _OCI_PLATFORM.match(p):
                raise ValueError(f"{p!r} is not a platform like linux/amd64 or linux/arm64/v8")
        return v

    @property
    def upstream(self) -> str:
        return self.registry

    @property
    def upstream_host(self) -> str:
        """`host[:port]` of the registry, what containerd sends as `?ns=`."""
        return urlsplit(self.registry).netloc


AnyMirrorConfig = Annotated[AptMirrorConfig | OciMirrorConfig, Field(discriminator="kind")]
