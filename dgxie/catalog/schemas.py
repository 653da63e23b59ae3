"""Input and output shapes of profiles and images."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dgxie.validation import check_name

# `dgxie-agent`: dgxie's own deploy agent (kernel + initramfs, `dgxie agent build`).
OS_PATTERN = r"^(ubuntu|debian|rhel|rocky|dgxie-agent|other)$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ProfileIn(_In):
    name: str
    image: str | None = None
    template: str = "ubuntu/autoinstall"
    role: str | None = None
    description: str = ""
    vars: dict[str, Any] = {}

    _name = field_validator("name")(classmethod(lambda cls, v: check_name(v)))


class ProfileUpdate(_In):
    image: str | None = None
    template: str | None = None
    role: str | None = None
    description: str | None = None
    vars: dict[str, Any] | None = None


class ProfileOut(BaseModel):
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


class ImageIn(_In):
    name: str
    os: str = Field(default="ubuntu", pattern=OS_PATTERN)
    arch: str = Field(default="x86_64", pattern=r"^(x86_64|arm64)$")
    kernel: str = Field(min_length=1, max_length=255)
    initrd: str = Field(min_length=1, max_length=255)
    cmdline: str = ""
    files: dict[str, Any] = {}

    _name = field_validator("name")(classmethod(lambda cls, v: check_name(v)))


class ImageUpdate(_In):
    os: str | None = Field(default=None, pattern=OS_PATTERN)
    arch: str | None = Field(default=None, pattern=r"^(x86_64|arm64)$")
    cmdline: str | None = None


class ImageOut(BaseModel):
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
