"""docs/configuration.md's `instance:` rows and docs/architecture.md's "Jobs and instances" say
what the code does: the defaults, the roles, the retry limit."""

from __future__ import annotations

import re

from dgxie.jobs.queue import MAX_ATTEMPTS
from dgxie.sections import ROLES, InstanceConfig
from tests.support.paths import REPO


def test_configuration_rows_give_the_defaults() -> None:
    doc = (REPO / "docs" / "configuration.md").read_text()
    row = re.search(r"^\| `instance.heartbeat_seconds`.*?\| ([^|]+) \|", doc, re.M)
    assert row is not None
    c = InstanceConfig(id="x")
    assert row.group(1).strip() == f"{c.heartbeat_seconds:g}, {c.expire_seconds:g}, {c.job_concurrency}"
    assert f"expected one of {', '.join(ROLES)}" in doc and c.role == "all"
    assert re.search(r"role: boot +# " + re.escape(" | ".join(ROLES)), doc)


def test_architecture_section_states_the_limits() -> None:
    doc = (REPO / "docs" / "architecture.md").read_text()
    section = doc.split("## Jobs and instances", 1)[1].split("\n## ", 1)[0]
    assert f"`MAX_ATTEMPTS` ({MAX_ATTEMPTS})" in section
    assert f"(default {InstanceConfig(id='x').expire_seconds:g} s)" in section


def test_architecture_section_names_the_proof() -> None:
    section = (REPO / "docs" / "architecture.md").read_text().split("## Jobs and instances", 1)[1].split("\n## ", 1)[0]
    for path in re.findall(r"`((?:tests|bench)/[\w/]+\.py)`", section):
        assert (REPO / path).is_file(), path
    assert "`tests/e2e/test_scaleout_kill.py`" in section and "`make bench-scaleout`" in section
    assert "bench-scaleout:" in (REPO / "Makefile").read_text()
