"""docs/security.md names code, config keys, event kinds and limits: they must stay the code's."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import get_args

from dgxie.nodes import credentials, origin
from dgxie.sections import BootConfig
from tests.support.paths import REPO

DOC = (REPO / "docs" / "security.md").read_text()


def test_every_credential_purpose_is_described() -> None:
    purposes = get_args(credentials.Purpose)
    assert purposes
    for p in purposes:
        assert f"| the `{p}` credential |" in DOC, p
    described = set(re.findall(r"\| the `(\w+)` credential \|", DOC))
    assert described == set(purposes)


def test_limits_and_names_in_the_doc_are_the_codes() -> None:
    assert timedelta(hours=12) == credentials.TTL and "12 h" in DOC
    assert timedelta(minutes=1) == origin.EVENT_EVERY and "at most one per node per\nminute" in DOC
    assert f"`{origin.REFUSED}`" in DOC
    assert "trusted_networks" in BootConfig.model_fields and "`boot.trusted_networks`" in DOC
    assert "Node.boot_token_hash" in DOC and "boot_nonce" in DOC


def test_the_doc_names_the_tests_that_check_it() -> None:
    for path in re.findall(r"tests/[\w/]+\.py", DOC):
        assert (REPO / path).is_file(), path


def test_every_config_key_named_exists() -> None:
    from dgxie.config import Settings

    keys = set(re.findall(r"`((?:dhcp|bmc|boot|api|install|handoff|tftp)\.[a-z_]+)(?::[^`]*)?`(?! event)", DOC))
    assert {"boot.trusted_networks", "bmc.allow_insecure_http", "dhcp.discovery_max_nodes"} <= keys
    for key in keys:
        section, field = key.split(".")
        model = Settings.model_fields[section].annotation
        assert model is not None and field in model.model_fields, key  # type: ignore[attr-defined]


def test_input_bounds_in_the_doc_are_the_codes() -> None:
    from dgxie import validation

    assert validation.MAX_JSON_DEPTH == 32 and "at most 32 levels deep" in DOC
    assert (validation.DOC_MAX_KEYS, validation.DOC_MAX_DEPTH, validation.DOC_MAX_BYTES) == (1024, 16, 64 * 1024)
    assert "1,024 keys, 16 levels and 64 KiB" in DOC


def test_admission_defaults_in_the_doc_are_the_codes() -> None:
    from dgxie.sections import ApiConfig

    api = ApiConfig()
    assert (api.max_inflight, api.queue, api.queue_wait, api.retry_after) == (8, 256, 0.5, 2)
    assert "requests (8)" in DOC and "(256)" in DOC and "(0.5 s)" in DOC and "(2 s," in DOC


def test_dashboard_session_limits_in_the_doc_are_the_codes() -> None:
    from dgxie.web import store

    assert store.TTL_SECONDS == 8 * 3600 and "8 hours" in DOC
    assert store.MAX_PER_TOKEN == 20 and "at most 20\n  sessions" in DOC
    assert store.TOUCH_SECONDS == 60 and "at most every 60 s" in DOC
    assert store.CACHE_SECONDS == 2.0 and "within 2 s" in DOC and "2 s, so a page load does not query" in DOC
    assert "`web_sessions`" in DOC and "dgxie/web/store.py" in DOC
    dashboard = (REPO / "docs" / "dashboard.md").read_text()
    assert "within 2 s" in dashboard and "`web_sessions`" in dashboard
