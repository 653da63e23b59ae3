"""JSON shapes of firmware results (API response models and the CLI's `--json` output).

Field names are part of the operator contract (ARCHITECTURE.md): fields may be added, never renamed.
"""

from __future__ import annotations

from pydantic import BaseModel


class ScanResult(BaseModel):
    """One node's firmware scan: `ok` with its component count, or the first error's kind and
    every failed endpoint's message (`name: message; ...`)."""

    node: str
    ok: bool
    components: int = 0
    model: str | None = None
    error_kind: str | None = None  # a BmcError kind (auth, timeout, ...), or no-bmc
    error: str = ""
    notes: list[str] = []  # quirks met, `endpoint: note`
    requests: int = 0  # HTTP requests the scan took
