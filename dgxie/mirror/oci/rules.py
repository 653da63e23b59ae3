"""Pure selection rules for OCI mirrors: which tags, which order ("newest"), which platforms.

Tag selection (docs/mirrors-oci.md):
1. `include`: a tag is a candidate when any pattern matches it (`re.search`); no patterns = all.
2. `exclude`: a candidate is dropped when any pattern matches it.
3. `keep_newest: N`: the candidates are ordered newest first and the first N kept. Newest means
   the image config's `created` time (RFC 3339; for an index, that of its first manifest whose
   platform is mirrored); ties, and tags whose config has no `created`, are ordered by a
   version-aware sort of the tag (`24.10` after `24.9`, `24.01-py3` after `24.01`, text before
   numbers so a moving tag like `latest` ranks oldest), and tags without
   a `created` time rank below every tag that has one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from dgxie.errors import Invalid

_CHUNK = re.compile(r"(\d+)|(\D+)")


def natural_key(tag: str) -> tuple[tuple[int, int, str], ...]:
    """Version-aware sort key: digit runs compare as numbers, the rest as text."""
    return tuple((1, int(d), "") if d else (0, 0, s) for d, s in _CHUNK.findall(tag))


def filter_tags(tags: Iterable[str], include: list[str], exclude: list[str]) -> list[str]:
    inc = [re.compile(p) for p in include]
    exc = [re.compile(p) for p in exclude]
    return sorted((t for t in tags if (not inc or any(p.search(t) for p in inc))
                   and not any(p.search(t) for p in exc)), key=natural_key)


def select_tags(repo: str, tags: list[str], include: list[str], exclude: list[str]) -> list[str]:
    """Tags passing include/exclude; a clear `Invalid` when none does (a typo must not sync nothing)."""
    picked = filter_tags(tags, include, exclude)
    if not picked:
        raise Invalid(f"repository {repo}: no tag matches include {include or ['.*']} / exclude {exclude} "
                      f"(upstream has {len(tags)} tags{': ' + ', '.join(tags[:5]) if tags else ''}"
                      f"{', ...' if len(tags) > 5 else ''})")
    return picked


def parse_created(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if m:  # Python wants at most 6 fractional digits; Go writes 9
        text = m.group(1) + (m.group(2) or "")[:7] + m.group(3)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else None


def newest_first(created: Mapping[str, datetime | None]) -> list[str]:
    """Tags ordered newest first by `created`, then by version-aware tag order (see module doc)."""
    def key(tag: str) -> tuple[int, float, tuple[tuple[int, int, str], ...]]:
        c = created[tag]
        return (1 if c is not None else 0, c.timestamp() if c is not None else 0.0, natural_key(tag))
    return sorted(created, key=key, reverse=True)


def platform_matches(platform: Mapping[str, Any] | None, wanted: list[str]) -> bool:
    """Does an index entry's `platform` match one of `wanted` (`os/arch[/variant]`)?

    No filter keeps everything; `linux/arm64` matches any variant, `linux/arm64/v8` only v8.
    Entries without a platform (attestations, artefacts) are kept only without a filter.
    """
    if not wanted:
        return True
    if not platform:
        return False
    os_, arch, variant = platform.get("os"), platform.get("architecture"), platform.get("variant")
    for w in wanted:
        parts = w.split("/")
        if parts[0] == os_ and parts[1] == arch and (len(parts) < 3 or parts[2] == variant):
            return True
    return False
