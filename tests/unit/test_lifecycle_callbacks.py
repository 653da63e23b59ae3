"""Parsing installer callbacks (pure): dgxie's JSON and form shapes, the cloud-init/curtin webhook."""

from __future__ import annotations

import json

import pytest

from dgxie.errors import Invalid
from dgxie.nodes.callbacks import parse


def test_simple_json_and_form() -> None:
    cb = parse(b'{"event": "finished", "message": "done"}')
    assert (cb.kind, cb.message, cb.data) == ("finished", "done", {"source": "callback"})
    cb = parse(b"event=failed&message=disk+not+found")  # busybox: wget --post-data 'event=failed&message=...'
    assert (cb.kind, cb.message) == ("failed", "disk not found")
    assert parse(b"event=started").kind == "started"


def test_webhook_events_are_progress_and_top_level_curtin_fail_is_failure() -> None:
    # The shape of cloudinit.reporting.events.FinishReportingEvent.as_dict() (cloud-init 22.4).
    ev = {"name": "cmd-install/stage-partitioning", "description": "configuring storage", "event_type": "finish",
          "origin": "curtin", "timestamp": 1700000000.5, "result": "SUCCESS"}
    cb = parse(json.dumps(ev).encode())
    assert cb.kind == "progress"
    assert cb.message == "finish cmd-install/stage-partitioning: SUCCESS (configuring storage)"
    assert cb.data["origin"] == "curtin" and cb.data["result"] == "SUCCESS"
    cb = parse(json.dumps(ev | {"name": "cmd-install", "result": "FAIL"}).encode())
    assert cb.kind == "failed"
    start = {"name": "subiquity/Install/install", "description": "", "event_type": "start",
             "origin": "curtin", "timestamp": 1.0}
    assert parse(json.dumps(start).encode()).kind == "progress"


def test_webhook_files_keep_only_names() -> None:
    ev = {"name": "cmd-install", "event_type": "finish", "result": "SUCCESS", "origin": "curtin", "timestamp": 1,
          "description": "", "files": [{"path": "/var/log/curtin/install.log", "content": "QUFB" * 100,
                                        "encoding": "base64"}]}
    cb = parse(json.dumps(ev).encode())
    assert cb.data["files"] == ["/var/log/curtin/install.log"] and "QUFB" not in json.dumps(cb.data)


def test_long_messages_are_truncated() -> None:
    assert len(parse(json.dumps({"event": "progress", "message": "x" * 10000}).encode()).message) == 500


@pytest.mark.parametrize("body", [
    b"", b"garbage", b"\xff\xfe", b"[1,2]", b'"finished"', b'{"event": "done"}', b"event=bogus",
    b'{"event_type": "middle", "name": "x"}', b'{"event_type": "finish", "name": "x", "result": "MAYBE"}',
    b'{"event_type": "start"}', b"a=1&b",
])
def test_garbage_is_invalid(body: bytes) -> None:
    with pytest.raises(Invalid):
        parse(body)


@pytest.mark.parametrize(("body", "words"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 32 levels"),  # was a RecursionError (a 500)
    (b'{"event": "progress", "message": "a", "x": ' + b"[" * 40 + b"]" * 40 + b"}", "nested deeper"),
    (b'{"event": "progress", "timestamp": NaN}', "finite numbers only"),  # PostgreSQL's JSON refuses NaN
    (b'{"event": "progress", "message": "a\\u0000b"}', "NUL"),
    (b"event=progress&message=a%00b", "NUL"),
    (b"[1, 2]", "expected a JSON object"),
])
def test_bodies_no_database_can_store_are_refused(body: bytes, words: str) -> None:
    with pytest.raises(Invalid, match=words):
        parse(body)
