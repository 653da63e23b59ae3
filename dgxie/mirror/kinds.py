"""The mirror kinds of this build, by the config's `kind`: the one table the generic service
looks a kind up in (`kind.MirrorKind` is what each must implement)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from dgxie.errors import Invalid
from dgxie.mirror.apt.kind import AptKind
from dgxie.mirror.kind import MirrorKind
from dgxie.mirror.oci.kind import OciKind

KINDS: Mapping[str, MirrorKind[Any]] = MappingProxyType({"apt": AptKind(), "oci": OciKind()})


def kind_for(kind: str) -> MirrorKind[Any]:
    try:
        return KINDS[kind]
    except KeyError:
        raise Invalid(f"mirror kind {kind!r} is not available in this build") from None
