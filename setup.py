"""Packaging hook (everything else is in pyproject.toml): the wheel carries dgxie's data folders.

The repository keeps `migrations/`, `templates/`, `firmware/` and `images/` at the top level; a
built wheel gets them as `dgxie/_data/<folder>`, where `dgxie.resources` finds them. MANIFEST.in
puts the same folders in the sdist, so a wheel built from the sdist has them too. An editable
install copies nothing: `dgxie.resources` reads the checkout's folders.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA = ("migrations", "templates", "firmware", "images")  # dgxie.resources.SHIPPED


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in DATA:
            src = ROOT / name
            if not src.is_dir():
                raise SystemExit(f"setup.py: {src} is missing: the wheel would lack dgxie's {name}/")
            dst = Path(self.build_lib) / "dgxie" / "_data" / name
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithData})
