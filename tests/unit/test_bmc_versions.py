"""Segment-wise firmware version comparison (nvfwupd style) and per-component status."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dgxie.firmware.versions import compare, is_valid, segments, status


@pytest.mark.parametrize(("a", "b", "want"), [
    ("23.11.21", "23.11.21", 0),
    ("23.11.20", "23.11.21", -1),
    ("23.11.21", "23.11.20", 1),
    ("1.10", "1.9", 1),               # numeric, not string, per segment
    ("01.01.03", "1.1.3", 0),         # leading zeros are numbers
    ("1.0", "1.0.0", 0),              # trailing zeros do not make a version newer
    ("1.0.1", "1.0", 1),
    ("1.0", "1.0.1", -1),
    ("96.00.89.00.01", "96.00.89.00.02", -1),
    ("96.10.4A.00.01", "96.10.4a.00.01", 0),   # hex-ish segments compare case-insensitively
    ("96.10.4A.00.01", "96.10.50.00.01", -1),  # mixed segment: string comparison "4a" < "50"
    ("HGX-22.10-1-rc57", "HGX-22.10-1-rc57", 0),
    ("HGX-22.10-1-rc57", "HGX-22.11-1-rc1", -1),   # '-' splits too
    ("HGX-23.1-1-rc1", "HGX-22.10-1-rc57", 1),
    ("00.02.0150.0000_n00", "00.02.0150.0000_n00", 0),
    ("00.02.0150.0000_n00", "00.02.0151.0000_n00", -1),
    ("0204.0201.0202", "204.201.202", 0),
    ("G520.0200.00.05", "G520.0200.00.06", -1),
    ("1.7.5F", "1.7.60", -1),
    (" 2.37 ", "2.37", 0),
])
def test_compare(a: str, b: str, want: int) -> None:
    assert compare(a, b) == want
    assert compare(b, a) == -want


def test_segments_split_on_dot_and_dash() -> None:
    assert segments("HGX-22.10-1-rc57") == ["HGX", "22", "10", "1", "rc57"]


@pytest.mark.parametrize(("installed", "required", "want"), [
    ("23.11.21", "23.11.21", "compliant"),
    ("23.11.20", "23.11.21", "outdated"),
    ("23.12.01", "23.11.21", "ahead"),
    (None, "23.11.21", "unknown"),
    ("  ", "23.11.21", "unknown"),
    ("23.11.21", None, "unknown"),
])
def test_status(installed: str | None, required: str | None, want: str) -> None:
    assert status(installed, required) == want


@pytest.mark.parametrize(("v", "ok"), [("23.11.21", True), ("P79 v1.45", True), ("", False), (" 1.0", False),
                                        ("1.0;rm", False), ("HGX-22.10-1-rc57", True)])
def test_is_valid(v: str, ok: bool) -> None:
    assert is_valid(v) is ok


version = st.lists(st.one_of(st.integers(0, 999).map(str), st.sampled_from(["rc1", "rc2", "a", "B", "n00"])),
                   min_size=1, max_size=6).map(".".join)


@given(version, version)
def test_antisymmetric(a: str, b: str) -> None:
    assert compare(a, b) == -compare(b, a)


@given(version)
def test_reflexive(a: str) -> None:
    assert compare(a, a) == 0


@given(version, version, version)
def test_transitive(a: str, b: str, c: str) -> None:
    if compare(a, b) <= 0 and compare(b, c) <= 0:
        assert compare(a, c) <= 0
