"""`OciMirrorSpec`: one `mirrors:` entry of kind `oci`, validated from the raw config mapping.

`dgxie.config.MirrorConfig` keeps unknown keys (extra=allow); the entry points hand the raw mapping
to `OciMirrorSpec.from_entry`, so the OCI keys have one home here. Example::

    - name: ngc
      kind: oci
      registry: https://nvcr.io
      username: $oauthtoken
      password_file: /etc/dgxie/ngc-key
      repositories: [nvidia/pytorch]
      tags: {include: ['^24\\.'], exclude: ['-igpu$'], keep_newest: 3}
      platforms: [linux/amd64]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dgxie.errors import Invalid

_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9.]+)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TagRules(_Strict):
    """Which tags to mirror: `include` (any matches, `re.search`; empty = all), then `exclude`
    (none matches), then the `keep_newest` newest by image `created` time (see oci_select)."""

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


class OciMirrorSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    kind: Literal["oci"] = "oci"
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
            if not _REPO.match(r):
                raise ValueError(f"{r!r} is not a repository name like nvidia/pytorch")
        return v

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, v: list[str]) -> list[str]:
        for p in v:
            if not _PLATFORM.match(p):
                raise ValueError(f"{p!r} is not a platform like linux/amd64 or linux/arm64/v8")
        return v

    @property
    def upstream_host(self) -> str:
        """`host[:port]` of the registry, what containerd sends as `?ns=`."""
        return urlsplit(self.registry).netloc

    @classmethod
    def from_entry(cls, raw: dict[str, Any]) -> OciMirrorSpec:
        """Validate a raw `mirrors:` entry; one `Invalid` naming every bad key."""
        name = raw.get("name", "?")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                lines.append(f"mirrors.{name}.{loc}: {str(err['msg']).removeprefix('Value error, ')}")
            raise Invalid("\n".join(lines)) from None
