"""The agent's facts bundle fixtures (tests/fixtures/agent/, see its README: captured vs constructed)."""

from __future__ import annotations

from dgxie.agent.facts import MEMBERS
from tests.support.paths import REPO

FIXTURES = REPO / "tests" / "fixtures" / "agent"


def members(folder: str) -> dict[str, bytes]:
    """A fixture folder's bundle members, as `read_tar` would return them."""
    return {p.name: p.read_bytes() for p in sorted((FIXTURES / folder).iterdir()) if p.name in MEMBERS}
