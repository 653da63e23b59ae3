"""Build recipes (`images/<name>/recipe.yaml`) and the input key that makes builds idempotent.

A recipe is a directory: `recipe.yaml` plus whatever it names (customize hooks, the agent's
`rootfs/`). `--recipe NAME` is looked up under the shipped `images/` directory (`dgxie.resources.recipes()`);
a value containing a `/` is a recipe directory path. The recipe's keys:

    os         the Image row's `os` (debian, dgxie-agent)
    suite      default suite (the command's --suite overrides it)
    variant    mmdebstrap variant (minbase, ...)
    packages   what mmdebstrap --include's (Recommends are never installed)
    dpkgopt    mmdebstrap --dpkgopt lines (e.g. path-exclude=/usr/share/man/*); they stay in the image
    hooks      image recipes: customize hooks, paths relative to the recipe directory
    cmdline    the Image row's kernel command line (placeholders of dgxie.boot.urls.expand_cmdline)
    busybox, binaries, links, files, modules   agent recipes: what goes into the initramfs

The input key (`input_key`) is the sha256 of everything a build's output depends on: every file
of the recipe directory (path, mode and content), the mirror and its snapshot, the suite, the
sorted package list, the public URL (images point APT at it) and `BUILDER_VERSION`. Same key,
same output: a build whose key an image already has is not run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dgxie import resources
from dgxie.errors import Invalid

# Bump when the builder's output for the same inputs changes (layout, compression, hooks' contract).
BUILDER_VERSION = "1"


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path  # the recipe directory
    os: str
    suite: str
    variant: str = "minbase"
    packages: tuple[str, ...] = ()
    dpkgopt: tuple[str, ...] = ()
    hooks: tuple[Path, ...] = ()
    cmdline: str = ""
    busybox: str | None = None
    binaries: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()


def _strings(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Invalid(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _absolute(values: tuple[str, ...] | list[str], key: str, where: str) -> None:
    for v in values:
        if not v.startswith("/") or ".." in v.split("/"):
            raise Invalid(f"{where}: {key}: {v!r} must be an absolute path without '..'")


def load(name: str) -> Recipe:
    """The recipe `name` (shipped) or at the directory `name` (when it contains a `/`)."""
    path = Path(name) if "/" in name else resources.recipes() / name
    where = f"recipe {name}"
    try:
        data = yaml.safe_load((path / "recipe.yaml").read_text())
    except OSError:
        raise Invalid(f"no recipe {name!r} ({path / 'recipe.yaml'} is not readable)") from None
    except yaml.YAMLError as exc:
        raise Invalid(f"{where}: recipe.yaml is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise Invalid(f"{where}: recipe.yaml must be a mapping")
    known = {"os", "suite", "variant", "packages", "dpkgopt", "hooks", "cmdline", "busybox", "binaries", "links",
             "files", "modules"}
    if unknown := sorted(set(data) - known):
        raise Invalid(f"{where}: unknown key {unknown[0]!r}")
    for key in ("os", "suite"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise Invalid(f"{where}: {key} is required")
    hooks = []
    for h in _strings(data, "hooks", where):
        hp = (path / h).resolve()
        if not hp.is_relative_to(path.resolve()) or not hp.is_file():
            raise Invalid(f"{where}: hook {h!r} is not a file of the recipe directory")
        hooks.append(hp)
    links = data.get("links", {}) or {}
    if not isinstance(links, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in links.items()):
        raise Invalid(f"{where}: links must map paths to paths")
    binaries, files = _strings(data, "binaries", where), _strings(data, "files", where)
    _absolute(binaries, "binaries", where)
    _absolute(files, "files", where)
    _absolute([*links, *links.values()], "links", where)
    busybox = data.get("busybox")
    if busybox is not None:
        _absolute([str(busybox)], "busybox", where)
    return Recipe(name=path.name, path=path, os=data["os"], suite=data["suite"], variant=str(data.get("variant",
                  "minbase")), packages=_strings(data, "packages", where), dpkgopt=_strings(data, "dpkgopt", where),
                  hooks=tuple(hooks),
                  cmdline=str(data.get("cmdline", "")), busybox=None if busybox is None else str(busybox),
                  binaries=binaries, links=dict(links), files=files, modules=_strings(data, "modules", where))


def tree_digest(root: Path) -> str:
    """sha256 over every file and symlink under `root`: relative path, mode bits, content (or
    link target), in path order. Owners and times do not count."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]):
            full = Path(dirpath) / name
            st = full.lstat()
            h.update(full.relative_to(root).as_posix().encode() + b"\0")
            h.update(b"%o\0" % stat.S_IMODE(st.st_mode))
            h.update(os.readlink(full).encode() if stat.S_ISLNK(st.st_mode) else full.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def input_key(recipe: Recipe, *, mirror: str, snapshot: str, suite: str, packages: list[str], public_url: str) -> str:
    """The build's input key (see the module docstring)."""
    doc = {"builder": BUILDER_VERSION, "recipe": tree_digest(recipe.path), "mirror": mirror, "snapshot": snapshot,
           "suite": suite, "packages": sorted(set(packages)), "public_url": public_url}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
