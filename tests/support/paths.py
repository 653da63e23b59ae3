"""Where the repository and the shared reference data are (CI clones with shared/ beside the repo)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO / ".." / "shared").resolve()
