"""Bad input is one 4xx `{"detail": str}` and changes nothing, on SQLite and PostgreSQL (issue 12, item 7).

Each case here was a 500 (or an aborted connection) before: deep JSON, integers past the database's
range, NUL characters and NaN (PostgreSQL refuses them), an image file whose sha256 is not one.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dgxie import db
from dgxie.api.limits import MAX_INT, MAX_JSON_DEPTH
from dgxie.models import Image, Node

JSON = {"content-type": "application/json"}
NODE = '{"hostname": "n1", "mac": "02:00:00:00:00:01", "vars": %s}'


def _refused(r, status: int = 422, words: str = "") -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and words in detail, detail


def _count(ctx, model) -> int:  # type: ignore[no-untyped-def]
    with db.session_scope(ctx.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900, 100_000])
def test_deep_json_is_refused_on_every_json_route(client, auth, ctx, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    for method, path in (("POST", "/api/v1/nodes"), ("PATCH", "/api/v1/nodes/n1"), ("POST", "/api/v1/profiles"),
                         ("POST", "/api/v1/images"), ("PUT", "/api/v1/secrets/s1"), ("POST", "/api/v1/tokens")):
        r = client.request(method, path, content=NODE % deep, headers=auth("admin") | JSON)
        _refused(r, words=f"nested deeper than {MAX_JSON_DEPTH} levels")
    assert _count(ctx, Node) == 0


def test_json_within_the_depth_bound_is_taken(client, auth) -> None:
    inner = "[" * 10 + "]" * 10
    r = client.post("/api/v1/nodes", content=NODE % f'{{"a": {inner}}}', headers=auth("admin") | JSON)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused(client, auth, ctx, value: str) -> None:
    r = client.post("/api/v1/nodes", content=NODE % f'{{"x": {value}}}', headers=auth("admin") | JSON)
    _refused(r, words="finite numbers only")
    assert _count(ctx, Node) == 0


@pytest.mark.parametrize("doc", ['{"k\\u0000": 1}', '{"k": "a\\u0000b"}', '{"k": ["\\u0000"]}', '{"k": "\\ud800"}'])
def test_nul_and_lone_surrogates_in_json_strings_are_refused(client, auth, ctx, doc: str) -> None:
    r = client.post("/api/v1/nodes", content=NODE % doc, headers=auth("admin") | JSON)
    _refused(r)
    assert _count(ctx, Node) == 0


@pytest.mark.parametrize("path", ["/api/v1/nodes/%00", "/api/v1/profiles/a%00b", "/api/v1/nodes?tag=%00",
                                  "/api/v1/nodes?role=x%00", "/images/%00/vmlinuz", "/boot/ipxe?mac=%00"])
def test_nul_in_path_or_query_is_refused(client, auth, path: str) -> None:
    _refused(client.get(path, headers=auth("viewer")), words="NUL")


@pytest.mark.parametrize("path", ["/api/v1/nodes?offset=9223372036854775808", "/api/v1/nodes?offset=99999999999999999999",
                                  f"/api/v1/nodes?offset={MAX_INT + 1}", "/api/v1/nodes/n1/events?after=9223372036854775808",
                                  "/api/v1/nodes/n1/events/stream?after=9223372036854775808",
                                  "/api/v1/mirrors/m/jobs/9223372036854775808", f"/api/v1/mirrors/m/jobs/{MAX_INT + 1}"])
def test_integers_out_of_range_are_refused(client, auth, path: str) -> None:
    _refused(client.get(path, headers=auth("viewer")), words="less than or equal to")


def test_huge_last_event_id_is_refused(client, auth) -> None:
    client.post("/api/v1/nodes", json={"hostname": "n1", "mac": "02:00:00:00:00:01"}, headers=auth("admin"))
    r = client.get("/api/v1/nodes/n1/events/stream", headers=auth("viewer") | {"Last-Event-ID": "9" * 30})
    _refused(r, words="Last-Event-ID")


@pytest.mark.parametrize("since", ["99999999999d", "999999999999w", "9" * 5000 + "d"])
def test_since_out_of_range_is_refused(client, auth, since: str) -> None:
    _refused(client.get("/api/v1/firmware/changes", params={"since": since}, headers=auth("viewer")), words="since")


def test_nan_in_a_float_query_is_refused(client, auth) -> None:
    r = client.get("/api/v1/inventory/slurm?memory_reserve_percent=nan", headers=auth("viewer"))
    _refused(r, words="memory_reserve_percent")


@pytest.mark.parametrize("sha", ["zz", "A" * 64, "0" * 63, 12, None])
def test_an_image_file_without_a_real_sha256_is_refused(client, auth, ctx, sha: object) -> None:
    body = {"name": "i1", "kernel": "k", "initrd": "i", "files": {"k": {"sha256": sha, "size": 1}}}
    _refused(client.post("/api/v1/images", json=body, headers=auth("admin")), words="k.sha256")
    assert _count(ctx, Image) == 0


def test_a_bad_stored_sha256_is_a_404_not_a_500(client, auth, ctx) -> None:
    with db.session_scope(ctx.sessions) as s:  # a row from before the check (or written by hand)
        s.add(Image(name="old", os="ubuntu", arch="x86_64", kernel="k", initrd="i", cmdline="",
                    files={"k": {"sha256": "../../etc/passwd"}}))
    for method in ("GET", "HEAD"):
        r = client.request(method, "/images/old/k")
        assert r.status_code == 404, r.text
