"""Input and output shapes of profiles and images."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dgxie.validation import check_document, check_name

# `dgxie-agent`: dgxie's own deploy agent (kernel + initramfs, `dgxie agent build`).
ImageOs = Literal["ubuntu", "debian", "rhel", "rocky", "dgxie-agent", "other"]
Arch = Literal["x86_64", "arm64"]
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_TIME = "2026-11-30T08:00:00Z"


def _example(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


def check_files(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """An image's `files`: each entry an object; one with `sha256` (a file served at
    /images/NAME/FILE) has 64 lower-case hex digits there and a whole `size` >= 0 if any; one
    with `url` (fetched on first use, then pinned: `catalog.upstream`) an http(s) URL."""
    for name, entry in (v or {}).items():
        if not isinstance(entry, dict):
            raise ValueError(f"{name}: must be an object")
        if "url" in entry and not (isinstance(entry["url"], str) and entry["url"].startswith(("http://", "https://"))):
            raise ValueError(f"{name}.url: must be an http(s) URL (a file fetched on first use)")
        if "sha256" in entry and not (isinstance(entry["sha256"], str) and SHA256_RE.match(entry["sha256"])):
            raise ValueError(f"{name}.sha256: must be 64 lower-case hex digits")
        size = entry.get("size", 0)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"{name}.size: must be a whole number of bytes >= 0")
    return check_document(v)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ProfileIn(_In):
    model_config = _example({"name": "ubuntu-gpu", "image": "ubuntu-2404", "template": "ubuntu/autoinstall",
                             "role": "slurmd", "description": "GPU compute", "vars": {"admin_user": "ops"}})
    name: str
    image: str | None = None
    template: str = "ubuntu/autoinstall"
    role: str | None = None
    description: str = ""
    vars: dict[str, Any] = {}

    _name = field_validator("name")(classmethod(lambda cls, v: check_name(v)))
    _vars = field_validator("vars")(classmethod(lambda cls, v: check_document(v)))


class ProfileUpdate(_In):
    model_config = _example({"description": "GPU compute, rack 2", "vars": {"admin_user": "ops"}})
    image: str | None = None
    template: str | None = None
    role: str | None = None
    description: str | None = None
    vars: dict[str, Any] | None = None

    _vars = field_validator("vars")(classmethod(lambda cls, v: check_document(v)))


class ProfileOut(BaseModel):
    model_config = _example({"id": 3, "name": "ubuntu-gpu", "image": "ubuntu-2404", "template": "ubuntu/autoinstall",
                             "role": "slurmd", "description": "GPU compute", "vars": {"admin_user": "ops"},
                             "source": "api", "created_at": _TIME, "updated_at": _TIME})
    id: int
    name: str
    image: str | None
    template: str
    role: str | None
    description: str
    vars: dict[str, Any]
    source: str
    created_at: datetime
    updated_at: datetime


_FILES = {"vmlinuz": {"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "size": 14680064,
                      "role": "kernel"},
          "initrd.img": {"sha256": "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
                         "size": 73400320, "role": "initrd"}}


class ImageIn(_In):
    model_config = _example({"name": "ubuntu-2404", "os": "ubuntu", "arch": "x86_64", "kernel": "vmlinuz",
                             "initrd": "initrd.img", "cmdline": "console=ttyS0", "files": _FILES})
    name: str
    os: ImageOs = "ubuntu"
    arch: Arch = "x86_64"
    kernel: str = Field(min_length=1, max_length=255)
    initrd: str = Field(default="", max_length=255, description="empty for a kernel that needs none (ESXi's mboot.efi)")
    cmdline: str = ""
    files: dict[str, Any] = Field(default={}, description="served files by name: {sha256, size, role, ...}")

    _name = field_validator("name")(classmethod(lambda cls, v: check_name(v)))
    _files = field_validator("files")(classmethod(lambda cls, v: check_files(v)))


class ImageUpdate(_In):
    model_config = _example({"cmdline": "console=ttyS0,115200"})
    os: ImageOs | None = None
    arch: Arch | None = None
    cmdline: str | None = None


class ImageOut(BaseModel):
    model_config = _example({"id": 2, "name": "ubuntu-2404", "os": "ubuntu", "arch": "x86_64", "kernel": "vmlinuz",
                             "initrd": "initrd.img", "cmdline": "console=ttyS0", "files": _FILES,
                             "created_at": _TIME, "updated_at": _TIME})
    id: int
    name: str
    os: str
    arch: str
    kernel: str
    initrd: str
    cmdline: str
    files: dict[str, Any]
    created_at: datetime
    updated_at: datetime
