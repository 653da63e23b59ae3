"""`dgxie.cli.gcpause.gc_paused`: the collector off in the block, back on after; what survives
frozen only in a process that runs its own command line (`cli.main` with no argv)."""

from __future__ import annotations

import gc

import pytest

from dgxie.cli import gcpause, main
from dgxie.cli.gcpause import gc_paused


def test_back_on_and_nothing_frozen_for_in_process_callers() -> None:
    assert gc.isenabled() and not gcpause.FREEZE[0]
    before = gc.get_freeze_count()
    with gc_paused():
        assert not gc.isenabled()
        kept = [[i] for i in range(100)]
    assert gc.isenabled() and gc.get_freeze_count() == before and len(kept) == 100


def test_a_collector_turned_off_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused(), gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_one_shot_process_freezes_what_survives() -> None:
    gcpause.FREEZE[0] = True
    try:
        with gc_paused():
            kept = [[i] for i in range(100)]
        assert gc.isenabled() and gc.get_freeze_count() >= len(kept)
    finally:
        gcpause.FREEZE[0] = False
        gc.unfreeze()


def test_main_freezes_only_for_the_process_own_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    gcpause.FREEZE[0] = True
    try:
        with pytest.raises(SystemExit):
            main(["--version"])
        assert gcpause.FREEZE[0] is False
        monkeypatch.setattr("sys.argv", ["dgxie", "--version"])
        with pytest.raises(SystemExit):
            main()
        assert gcpause.FREEZE[0] is True
    finally:
        gcpause.FREEZE[0] = False
