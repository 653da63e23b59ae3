"""`dbjson.loads` gives what `json.loads` gives, objects and errors alike, for every shape the
database prints (PostgreSQL's jsonb and `json_agg` text, SQLite's JSON text)."""

from __future__ import annotations

import json

import pytest

from dgxie import dbjson

TEXTS = [
    '{"rack": "rack12", "gpus": 8, "ratio": 0.5, "ok": true, "none": null}',
    '["rack1", "h100"]', "[]", "{}", '"text"', "12", "-1.5e3", "null",
    '[["02:00:00:00:00:01", null], \n ["02:00:00:00:00:02", "eth1"]]',  # json_agg's separator
    '{"nested": {"a": [1, {"b": "\\u00e9\\n"}]}}', '{"big": 123456789012345678901234567890}',
    " [1, 2]", "[1, 2] ", "\n{}\n",  # surrounding whitespace: handed to json.loads
]


@pytest.mark.parametrize("text", TEXTS)
def test_the_same_values_as_json_loads(text: str) -> None:
    for data in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        assert dbjson.loads(data) == json.loads(text)
        assert type(dbjson.loads(data)) is type(json.loads(text))


@pytest.mark.parametrize("text", ["", "   ", "[1, 2", "[1, 2] x", "{'a': 1}", "nul", "[1,]"])
def test_the_same_errors_as_json_loads(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        dbjson.loads(text.encode())
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert (ours.value.msg, ours.value.pos) == (theirs.value.msg, theirs.value.pos)
