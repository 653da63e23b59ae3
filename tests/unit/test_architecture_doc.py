"""docs/architecture.md's tree is the package: every entry exists, every package and module is listed."""

from __future__ import annotations

import re

from tests.support.paths import REPO

DOC = REPO / "docs" / "architecture.md"


def tree_entries() -> set[str]:
    text = DOC.read_text()
    block = text.split("## The tree", 1)[1].split("```", 2)[1]
    return {m.group(1) for m in re.finditer(r"^  (\S+?)/?(?:\s|$)", block, re.M)}


def test_the_tree_in_the_doc_matches_the_package() -> None:
    pkg = REPO / "dgxie"
    actual = {p.stem if p.suffix == ".py" else p.name for p in pkg.iterdir()
              if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))
              and p.name not in ("__init__.py", "__main__.py")}
    listed = {e.removesuffix(".py") for e in tree_entries()}
    assert listed - actual == set(), "docs/architecture.md names what does not exist"
    assert actual - listed == set(), "docs/architecture.md does not list these (add them to the tree)"


def test_where_does_x_go_names_real_places() -> None:
    table = DOC.read_text().split("## Where does X go", 1)[1].split("\n## ", 1)[0]
    for path in re.findall(r"`((?:api|compose|boot|nodes|cli|mirror|bmc|agent)/[a-z_<>/.]+?\.py)", table):
        if "<" not in path:
            assert (REPO / "dgxie" / path).exists(), path


def test_docs_name_modules_and_files_that_exist() -> None:
    """Every `dgxie/...py` path and `dgxie.a.b` name in docs/ and the README is real (after a move,
    the docs follow); `dgxie.url=` (a kernel parameter in deploy.md), `dgxie.io/boot` (a Kubernetes
label) and file names like `dgxie.yaml` are no module names."""
    import importlib

    texts = [p.read_text() for p in sorted((REPO / "docs").glob("*.md"))] + [(REPO / "README.md").read_text()]
    missing = []
    for text in texts:
        for path in set(re.findall(r"\bdgxie/[A-Za-z0-9_/]+\.py\b", text)):
            if not (REPO / path).exists():
                missing.append(path)
        for dotted in set(re.findall(r"(?<![\w/.-])dgxie(?:\.[A-Za-z_][A-Za-z0-9_]*)+(?![\w=/-])", text)):
            if dotted.endswith((".yaml", ".service", ".conf")):
                continue  # a file name (dgxie.yaml, dgxie.service), not a module
            parts = dotted.split(".")
            for i in range(len(parts), 0, -1):
                try:
                    obj: object = importlib.import_module(".".join(parts[:i]))
                except ImportError:
                    continue
                try:
                    for attr in parts[i:]:
                        obj = getattr(obj, attr)
                except AttributeError:
                    missing.append(dotted)
                break
    assert missing == []
