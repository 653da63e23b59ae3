"""The composition root: configuration in, a wired `Context` out (see root.py)."""

from dgxie.compose.root import build_context
from dgxie.compose.site import build_site

__all__ = ["build_context", "build_site"]
