"""Facts and vars are bounded (issue 12, item 12): keys, depth and JSON size, on both databases.

50,000 keys in one node's vars made every list page carry 735 KB; now the excess is a 422 that
changes nothing, and a document at the bounds is taken.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dgxie.validation import DOC_MAX_BYTES, DOC_MAX_DEPTH, DOC_MAX_KEYS


def _nested(depth: int) -> dict[str, object]:
    doc: dict[str, object] = {}
    for _ in range(depth - 1):
        doc = {"a": doc}
    return doc


TOO_MANY = {f"k{i}": i for i in range(DOC_MAX_KEYS + 1)}
TOO_DEEP = _nested(DOC_MAX_DEPTH + 1)
TOO_BIG = {"blob": "x" * DOC_MAX_BYTES}
EXCESS = [(TOO_MANY, f"more than {DOC_MAX_KEYS} keys"), (TOO_DEEP, f"nested deeper than {DOC_MAX_DEPTH} levels"),
          (TOO_BIG, f"more than {DOC_MAX_BYTES}"), ({f"k{i}": i for i in range(50_000)}, "keys")]


@pytest.mark.parametrize(("field", "excess"), [(f, e) for f in ("facts", "vars") for e in EXCESS])
def test_node_facts_and_vars_past_a_bound_are_refused(client, auth, field: str, excess: tuple[dict[str, object], str]) -> None:
    doc, words = excess
    h = auth("admin")
    r = client.post("/api/v1/nodes", json={"hostname": "n1", "mac": "02:00:00:00:00:01", field: doc}, headers=h)
    assert r.status_code == 422 and f"body.{field}: " in r.json()["detail"] and words in r.json()["detail"], r.text
    assert client.get("/api/v1/nodes", headers=h).json()["total"] == 0

    assert client.post("/api/v1/nodes", json={"hostname": "n1", "mac": "02:00:00:00:00:01"}, headers=h).status_code == 201
    r = client.patch("/api/v1/nodes/n1", json={field: doc}, headers=h)
    assert r.status_code == 422 and words in r.json()["detail"], r.text
    assert client.get("/api/v1/nodes/n1", headers=h).json()[field] == {}


@pytest.mark.parametrize("excess", EXCESS[:3])
def test_profile_vars_past_a_bound_are_refused(client, auth, excess: tuple[dict[str, object], str]) -> None:
    doc, words = excess
    h = auth("admin")
    r = client.post("/api/v1/profiles", json={"name": "p1", "vars": doc}, headers=h)
    assert r.status_code == 422 and words in r.json()["detail"], r.text
    assert client.post("/api/v1/profiles", json={"name": "p1"}, headers=h).status_code == 201
    r = client.patch("/api/v1/profiles/p1", json={"vars": doc}, headers=h)
    assert r.status_code == 422 and words in r.json()["detail"], r.text
    assert client.get("/api/v1/profiles/p1", headers=h).json()["vars"] == {}


def test_documents_at_the_bounds_are_taken(client, auth) -> None:
    h = auth("admin")
    at_keys = {f"k{i}": i for i in range(DOC_MAX_KEYS)}
    r = client.post("/api/v1/nodes", json={"hostname": "n1", "mac": "02:00:00:00:00:01", "vars": at_keys,
                                           "facts": _nested(DOC_MAX_DEPTH)}, headers=h)
    assert r.status_code == 201, r.text
    assert len(r.json()["vars"]) == DOC_MAX_KEYS


def test_the_bounds_are_stated_in_docs_api_md() -> None:
    text = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    for value in (f"{DOC_MAX_KEYS:,} keys", f"{DOC_MAX_DEPTH} levels", f"{DOC_MAX_BYTES // 1024} KiB"):
        assert value in text, value
