"""The composition root: configuration in, a wired `Context` out (see root.py).

`build_context` and `build_site` are imported on first use (PEP 562): a CLI command that needs
only the site (`dgxie.compose.site`) does not import the whole server's wiring (0.25 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dgxie.compose.root import build_context
    from dgxie.compose.site import build_site

__all__ = ["build_context", "build_site"]


def __getattr__(name: str) -> Any:
    if name == "build_context":
        from dgxie.compose.root import build_context

        return build_context
    if name == "build_site":
        from dgxie.compose.site import build_site

        return build_site
    raise AttributeError(f"module 'dgxie.compose' has no attribute {name!r}")
