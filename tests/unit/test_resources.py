"""dgxie.resources: the one place that knows where the shipped folders are. In a checkout (these
tests) they are the repository's own folders, whatever the current directory; the installed wheel
is checked by tests/integration/test_wheel.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from dgxie import resources
from tests.support.paths import REPO


def test_a_checkout_uses_its_own_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert [resources.shipped(n) for n in resources.SHIPPED] == [REPO / n for n in resources.SHIPPED]
    assert resources.migrations() == REPO / "migrations" and (resources.migrations() / "env.py").is_file()
    assert resources.templates() == REPO / "templates" and resources.baselines() == REPO / "firmware"
    assert (resources.recipes() / "agent" / "recipe.yaml").is_file()


def test_only_the_shipped_folders() -> None:
    with pytest.raises(ValueError, match="'docs' is not a shipped folder"):
        resources.shipped("docs")


def test_nothing_else_reads_the_source_tree() -> None:
    """No module finds data relative to its own file or to the current directory: that is what
    dgxie.resources is for (package data inside the package goes through importlib.resources too)."""
    offenders = []
    for path in (REPO / "dgxie").rglob("*.py"):
        text = path.read_text()
        if "parents[" in text or "__file__" in text:
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
