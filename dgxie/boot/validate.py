"""Validation of rendered install configs before they are served (pure: text in, error out).

- user-data: YAML whose first line is `#cloud-config`; its `autoinstall:` section validates against
  subiquity's own JSON schema (a copy of canonical/subiquity `autoinstall-schema.json` ships in
  `schema_data/`).
- meta-data: a YAML mapping with `instance-id`; vendor-data: `#cloud-config` YAML.
- preseed: debconf lines `OWNER QUESTION TYPE [VALUE]` (what `debconf-set-selections` reads).
- kickstart: every `%pre`/`%post`/`%packages` section closed by `%end`.

Before a line-based config (preseed, kickstart) is rendered, every variable its template reads must
fit on one line (`check_line_values`: no newline, carriage return or NUL anywhere in the value, in
lists and mappings too): a newline in a value would add a debconf question, a `late_command` or a
`%post` section of its own. The admin user name must be a plain user name (`check_username`,
every template set): it reaches shell lines. Values that reach shell or kickstart option lines are
also quoted there (the `sh` filter, `shlex.quote`).

Errors name the rendered line and the failing key, e.g.
``user-data line 14: autoinstall.identity: 'password' is a required property``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml

from dgxie.errors import Invalid

# package data of dgxie.boot (pyproject's package-data), read through importlib.resources
SCHEMA_PATH = resources.files("dgxie.boot").joinpath("schema_data", "subiquity-autoinstall-schema.json")
# libyaml's loader when PyYAML was built with it: 10x faster than the pure-Python one (33 -> 3 ms
# for a DGX user-data), which matters when a rack boots at once.
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SECRET_WORDS = ("password", "token", "secret", "key")  # schema errors under these keys never echo the value
DEBCONF_TYPES = frozenset({"string", "boolean", "select", "multiselect", "password", "note", "text", "title",
                           "error", "seen"})


USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")  # useradd's portable names (NAME_REGEX), at most 32
_BREAKS = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL character"}


class RenderError(Invalid):
    """A template or its output is wrong: names the template, the line and the failing key."""

    def __init__(self, template: str, message: str, *, line: int | None = None, key: str | None = None,
                 where: str = "template") -> None:
        at = f" line {line}" if line is not None else ""
        what = f"{key}: " if key else ""
        super().__init__(f"{template} ({where}{at}): {what}{message}")
        self.template, self.line, self.key = template, line, key


@cache
def autoinstall_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return data


def _line_of(text: str, path: list[str | int]) -> int | None:
    """The 1-based line of the YAML node at `path` (keys and list indexes), as deep as it exists."""
    try:
        node: Any = yaml.compose(text, Loader=LOADER)
    except yaml.YAMLError:
        return None
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


def _yaml(text: str, template: str, artifact: str) -> Any:
    try:
        return yaml.load(text, Loader=LOADER)  # a safe loader (CSafeLoader or SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise RenderError(template, f"not valid YAML ({problem})", line=mark.line + 1 if mark else None,
                          where=artifact) from None


def _cloud_config(text: str, template: str, artifact: str) -> dict[str, Any]:
    if not text.startswith("#cloud-config\n"):
        raise RenderError(template, "must start with a '#cloud-config' line", line=1, where=artifact)
    data = _yaml(text, template, artifact)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RenderError(template, "the top level must be a mapping", line=2, where=artifact)
    return data


def validate_user_data(text: str, template: str) -> dict[str, Any]:
    data = _cloud_config(text, template, "user-data")
    auto = data.get("autoinstall")
    if auto is None:
        return data
    if not isinstance(auto, dict):
        raise RenderError(template, "must be a mapping", key="autoinstall", line=_line_of(text, ["autoinstall"]),
                          where="user-data")
    validator = jsonschema.Draft7Validator(autoinstall_schema())
    errors = sorted(validator.iter_errors(auto), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        err = errors[0]
        path: list[str | int] = ["autoinstall", *err.absolute_path]
        secret = any(w in str(p).lower() for p in path for w in SECRET_WORDS)
        message = f"fails the schema's {err.validator!r} rule (value not shown)" if secret else err.message
        raise RenderError(template, message, key=".".join(str(p) for p in path),
                          line=_line_of(text, path), where="user-data")
    return data


def _line_break(value: Any) -> str | None:
    """What in `value` (a string, or one inside lists and mappings) would break a line, if anything."""
    if isinstance(value, str):
        return next((what for ch, what in _BREAKS.items() if ch in value), None)
    if isinstance(value, dict):
        return next((b for k, v in value.items() if (b := _line_break(k) or _line_break(v))), None)
    if isinstance(value, (list, tuple)):
        return next((b for v in value if (b := _line_break(v))), None)
    return None


def check_line_values(values: Mapping[str, Any], source: Mapping[str, str], names: Iterable[str], template: str,
                      artifact: str) -> None:
    """RenderError for the first variable in `names` whose value would break a line of `artifact`."""
    for key in sorted(names):
        if key in values and (what := _line_break(values[key])):
            raise RenderError(template, f"contains {what} (from the {source.get(key, '?')} layer): every value "
                              f"in a {artifact} must fit on one line; refused", key=key, where=artifact)


def check_username(values: Mapping[str, Any], template: str, artifact: str) -> None:
    """RenderError unless `admin_user` is a plain user name (lower case, digits, _ and -; 32 at most)."""
    user = values.get("admin_user")
    if user is not None and not (isinstance(user, str) and USERNAME_RE.match(user)):
        raise RenderError(template, f"{str(user)[:40]!r} is not a user name (a-z, 0-9, _ and -, starting with a "
                          "letter or _, at most 32)", key="admin_user", where=artifact)


def validate_meta_data(text: str, template: str) -> dict[str, Any]:
    data = _yaml(text, template, "meta-data")
    if not isinstance(data, dict) or not data.get("instance-id"):
        raise RenderError(template, "a mapping with an instance-id is required", key="instance-id",
                          where="meta-data")
    return data


def validate_vendor_data(text: str, template: str) -> dict[str, Any]:
    return _cloud_config(text, template, "vendor-data")


def validate_preseed(text: str, template: str) -> None:
    """Each logical line (backslash continues) is `OWNER QUESTION TYPE [VALUE]` or a comment."""
    logical, start = "", 0
    for no, raw in enumerate(text.splitlines(), start=1):
        if not logical:
            start = no
        if raw.endswith("\\"):
            logical += raw[:-1]
            continue
        line, logical = (logical + raw).strip(), ""
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 3)
        if len(fields) < 3:
            raise RenderError(template, "expected OWNER QUESTION TYPE [VALUE]", line=start, where="preseed")
        if fields[2] not in DEBCONF_TYPES:
            raise RenderError(template, f"unknown debconf type {fields[2]!r}", key=fields[1], line=start,
                              where="preseed")
    if logical:
        raise RenderError(template, "ends inside a continued line", line=start, where="preseed")


_SECTION = re.compile(r"^%(pre|post|packages|pre-install|onerror|traceback|addon)\b")


def validate_kickstart(text: str, template: str) -> None:
    """Sections open with %pre/%post/%packages/... and close with %end; no nesting."""
    open_at: tuple[str, int] | None = None
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        m = _SECTION.match(line)
        if m:
            if open_at is not None:
                raise RenderError(template, f"%{m.group(1)} inside %{open_at[0]} (line {open_at[1]}) before %end",
                                  line=no, where="kickstart")
            open_at = (m.group(1), no)
        elif line == "%end":
            if open_at is None:
                raise RenderError(template, "%end without a section", line=no, where="kickstart")
            open_at = None
    if open_at is not None:
        raise RenderError(template, f"%{open_at[0]} is never closed by %end", line=open_at[1], where="kickstart")


VALIDATORS = {
    "user-data": validate_user_data,
    "meta-data": validate_meta_data,
    "vendor-data": validate_vendor_data,
    "preseed": validate_preseed,
    "kickstart": validate_kickstart,
}
