"""Where dgxie's shipped data lives: the one resolver for migrations, templates, baselines and recipes.

The repository keeps them as top-level folders (`migrations/`, `templates/`, `firmware/`, `images/`);
the wheel and the sdist carry them as `dgxie/_data/<folder>` (setup.py's `build_py` copies them, see
docs/architecture.md "Resources and packaging"). `shipped(name)` returns the folder, read through
`importlib.resources` from the installed package; in a source checkout (editable install, or
`PYTHONPATH=.`) the package has no `_data/` and the checkout's own folder is used. Nothing here, nor
anywhere else, depends on the current directory.

The folders must be real directories on disk (a plain or editable install; not a zipped package):
Alembic, Jinja's FileSystemLoader and the image builders read files by path.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

SHIPPED = ("migrations", "templates", "firmware", "images")
"""The folders shipped with dgxie, by their repository name."""

DATA = "_data"
"""The folder inside the installed package that holds them (the wheel's `dgxie/_data/`)."""


class MissingResource(RuntimeError):
    """A shipped folder is in neither place: a broken install (a wheel built without its data)."""


def _package_dir() -> Path:
    root = resources.files("dgxie")
    if not isinstance(root, Path):
        raise MissingResource(f"dgxie is installed as {type(root).__name__}, not as files on disk; "
                              "install it from the wheel or the source tree")
    return root


@cache
def shipped(name: str) -> Path:
    """The shipped folder `name` (one of `SHIPPED`): `dgxie/_data/<name>` in an installed package,
    `<checkout>/<name>` in a source checkout. Raises MissingResource when neither exists."""
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not a shipped folder (known: {', '.join(SHIPPED)})")
    package = _package_dir()
    installed = package / DATA / name
    if installed.is_dir():
        return installed
    checkout = package.parent / name
    if checkout.is_dir() and (package.parent / "pyproject.toml").is_file():
        return checkout
    raise MissingResource(f"dgxie's shipped {name}/ is missing (looked in {installed} and {checkout}): "
                          "reinstall dgxie from a wheel built by its setup.py")


def migrations() -> Path:
    """The Alembic script directory (`env.py`, `versions/`)."""
    return shipped("migrations")


def templates() -> Path:
    """The shipped Jinja templates (iPXE, install configs, bootstrap); a site folder overrides them."""
    return shipped("templates")


def baselines() -> Path:
    """The shipped firmware baselines (`*.yaml`); a site folder overrides them file by file."""
    return shipped("firmware")


def recipes() -> Path:
    """The shipped image and agent recipes (`images/<name>/recipe.yaml`)."""
    return shipped("images")
