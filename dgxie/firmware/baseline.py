"""Firmware baselines: one YAML file per platform in `firmware/`, loaded and validated.

```yaml
platform: dgx-h100
models: [DGXH100]               # ComputerSystem.Model values this baseline applies to ("*": any)
components:                     # component Id (or pattern) -> required version (a string)
  HostBMC_0: "23.11.21"
  "HGX_FW_GPU_SXM_[1-8]": "96.00.89.00.01"
```
Patterns use `[1-8]`/`[abc]` classes (expanded, so a missing `PSU_3` is reported by name) and
`*`/`?` (matched only). Every mistake in a file is reported at once, one line each, naming the
file and key.
"""

from __future__ import annotations

import difflib
import fnmatch
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dgxie.errors import Invalid
from dgxie.firmware.versions import is_valid

KEYS = {"platform", "models", "description", "components"}
ID_RE = re.compile(r"^[A-Za-z0-9_.\-\[\]*?]+$")
CLASS_RE = re.compile(r"\[([^\]]+)\]")


@dataclass(frozen=True)
class Requirement:
    key: str  # the component Id or pattern as written
    version: str

    @property
    def is_pattern(self) -> bool:
        return any(ch in self.key for ch in "[*?")

    def expand(self) -> list[str] | None:
        """Every Id the key names, or None when it has `*`/`?` (not enumerable)."""
        if "*" in self.key or "?" in self.key:
            return None
        parts = CLASS_RE.split(self.key)
        choices = [[p] if i % 2 == 0 else _class(p) for i, p in enumerate(parts)]
        return ["".join(c) for c in itertools.product(*choices)]

    def matches(self, cid: str) -> bool:
        return fnmatch.fnmatchcase(cid, self.key)


def _class(body: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            lo, hi = body[i], body[i + 2]
            out.extend(chr(c) for c in range(ord(lo), ord(hi) + 1))
            i += 3
        else:
            out.append(body[i])
            i += 1
    return out


@dataclass(frozen=True)
class Baseline:
    platform: str
    models: tuple[str, ...]
    requirements: tuple[Requirement, ...]
    source: str = ""
    description: str = ""

    @property
    def generic(self) -> bool:
        return "*" in self.models

    def applies_to(self, model: str | None) -> bool:
        norm = _norm(model or "")
        return self.generic or any(_norm(m) == norm for m in self.models)

    def required(self, cid: str) -> Requirement | None:
        exact = next((r for r in self.requirements if not r.is_pattern and r.key == cid), None)
        return exact or next((r for r in self.requirements if r.is_pattern and r.matches(cid)), None)

    def unmatched(self, component_ids: set[str]) -> list[tuple[str, str | None]]:
        """Requirements (or expanded Ids) absent from `component_ids`, each with a did-you-mean hint."""
        out: list[tuple[str, str | None]] = []
        for r in self.requirements:
            ids = r.expand()
            names = ids if ids is not None else ([] if any(r.matches(c) for c in component_ids) else [r.key])
            for name in names:
                if name not in component_ids:
                    close = difflib.get_close_matches(name, sorted(component_ids), n=1, cutoff=0.75)
                    out.append((name, close[0] if close else None))
        return out


def _norm(s: str) -> str:
    return re.sub(r"[\s_\-]", "", s).lower()


def parse(data: Any, source: str) -> Baseline:
    """Validate one baseline document; raises Invalid with one line per mistake."""
    errs: list[str] = []
    if not isinstance(data, dict):
        raise Invalid(f"{source}: a baseline is a mapping with platform, models and components")
    for k in sorted(set(data) - KEYS):
        errs.append(f"{source}: {k}: unknown key (known: {', '.join(sorted(KEYS))})")
    platform = data.get("platform")
    if not isinstance(platform, str) or not re.match(r"^[a-z0-9][a-z0-9._-]*$", platform):
        errs.append(f"{source}: platform: needs a lower-case name like dgx-h100")
    models = data.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
        errs.append(f"{source}: models: needs a list of ComputerSystem.Model values (or ['*'])")
        models = []
    comps = data.get("components")
    reqs: list[Requirement] = []
    if not isinstance(comps, dict) or not comps:
        errs.append(f"{source}: components: needs a mapping of component Id -> required version")
        comps = {}
    seen: dict[str, str] = {}
    for key, version in comps.items():
        where = f"{source}: components.{key}"
        if not isinstance(key, str) or not ID_RE.match(key) or key.count("[") != key.count("]"):
            errs.append(f"{where}: not a component Id or pattern (letters, digits, _ . - and [1-8] * ?)")
            continue
        if isinstance(version, (int, float)) and not isinstance(version, bool):
            errs.append(f"{where}: version {version!r} was read as a number; quote it, e.g. \"{version}\"")
            continue
        if not isinstance(version, str) or not is_valid(version):
            errs.append(f"{where}: {version!r} is not a version (e.g. \"23.11.21\" or \"96.00.89.00.01\")")
            continue
        req = Requirement(key, version)
        for cid in req.expand() or []:
            if cid in seen:
                errs.append(f"{where}: {cid} is already required by {seen[cid]}")
            seen[cid] = key
        reqs.append(req)
    if errs:
        raise Invalid("\n".join(errs))
    return Baseline(platform=str(platform), models=tuple(models), requirements=tuple(reqs), source=source,
                    description=str(data.get("description") or ""))


def load_file(path: Path) -> Baseline:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise Invalid(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise Invalid(f"{path}{f' line {mark.line + 1}' if mark else ''}: not valid YAML") from None
    return parse(data, path.name)


def load_dir(directory: Path) -> list[Baseline]:
    """Every `*.yaml` baseline in `directory` (all files validated; errors of all files together)."""
    if not directory.is_dir():
        raise Invalid(f"firmware baselines: {directory} is not a directory")
    return load_files(sorted(directory.glob("*.y*ml")), str(directory))


def load_files(paths: list[Path], where: str = "baselines") -> list[Baseline]:
    """The baselines in `paths`, all validated: one `Invalid` with every mistake of every file (one
    line each), including a platform defined by two of them."""
    out, errs = [], []
    for f in paths:
        try:
            out.append(load_file(f))
        except Invalid as exc:
            errs.append(exc.detail)
    platforms = [b.platform for b in out]
    for p in sorted({p for p in platforms if platforms.count(p) > 1}):
        errs.append(f"{where}: platform {p} is defined twice")
    if errs:
        raise Invalid("\n".join(errs))
    return out


def pick(baselines: list[Baseline], model: str | None) -> Baseline | None:
    """The baseline for a model: a specific match first, the generic one otherwise."""
    specific = [b for b in baselines if not b.generic and b.applies_to(model)]
    if specific:
        return specific[0]
    return next((b for b in baselines if b.generic), None)
