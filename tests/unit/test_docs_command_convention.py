"""README.md and docs/ write commands as plain `dgxie` (never `.venv/bin/dgxie`); README.md says once how to
put it on PATH."""

from __future__ import annotations

import re

from tests.support.paths import REPO


def test_docs_call_dgxie_by_its_plain_name() -> None:
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    offenders = [f"{f.name}: {line.strip()}" for f in files
                 for block in re.findall(r"```[a-z]*\n(.*?)```", f.read_text(), flags=re.S)
                 for line in block.splitlines()
                 if re.search(r"\.venv/bin/dgxie\b|\$\(BIN\)/dgxie\b", line)]
    assert not offenders, offenders
    readme = (REPO / "README.md").read_text()
    assert "source .venv/bin/activate" in readme
