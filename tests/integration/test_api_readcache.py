"""Node pages and the Ansible inventory are served from a cache keyed by the database's
change signal (`dgxie.nodes.generation`): every committed change is seen at the next request,
made through this app, another app on the same database, or a row written without an event;
`ETag` + `If-None-Match` answer 304 while nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from dgxie.app import create_app
from dgxie.models import Node


def test_every_change_is_seen_and_etags_answer_304(client, auth, make_ctx, ctx) -> None:
    h = auth("operator")
    for i in range(3):
        r = client.post("/api/v1/nodes", json={"hostname": f"n{i}", "mac": f"02:00:00:00:00:0{i}", "role": "slurmd"},
                        headers=h)
        assert r.status_code == 201, r.text
    first = client.get("/api/v1/nodes?limit=2", headers=h)
    assert [n["hostname"] for n in first.json()["items"]] == ["n0", "n1"] and first.json()["total"] == 3
    etag = first.headers["etag"]
    again = client.get("/api/v1/nodes?limit=2", headers=h | {"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""

    assert client.patch("/api/v1/nodes/n0", json={"tags": ["rack9"]}, headers=h).status_code == 200
    changed = client.get("/api/v1/nodes?limit=2", headers=h | {"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["items"][0]["tags"] == ["rack9"]
    assert changed.headers["etag"] != etag
    assert client.get("/api/v1/nodes/n0", headers=h).json()["tags"] == ["rack9"]

    # another dgxie instance on the same database changes a node: seen here at the next request
    other = make_ctx()
    with TestClient(create_app(other)) as c2:
        assert c2.delete("/api/v1/nodes/n1", headers=h).status_code == 204
    assert [n["hostname"] for n in client.get("/api/v1/nodes?limit=2", headers=h).json()["items"]] == ["n0", "n2"]
    assert client.get("/api/v1/nodes/n1", headers=h).status_code == 404

    # a row written without an event (install progress, facts): updated_at moves
    before = client.get("/api/v1/nodes/n2", headers=h).json()
    with ctx.sessions() as s, s.begin():
        s.execute(update(Node).where(Node.hostname == "n2").values(
            state="installed", updated_at=datetime.now(UTC) + timedelta(seconds=1)))
    after = client.get("/api/v1/nodes/n2", headers=h).json()
    assert (before["state"], after["state"]) == ("enrolled", "installed")

    inv = client.get("/api/v1/inventory/ansible", headers=h)
    assert inv.status_code == 200 and "n2" in inv.json()["_meta"]["hostvars"]
    assert client.get("/api/v1/inventory/ansible", headers=h | {"If-None-Match": inv.headers["etag"]}).status_code == 304
    assert client.patch("/api/v1/nodes/n2", json={"role": None}, headers=h).status_code == 200
    assert "n2" not in client.get("/api/v1/inventory/ansible", headers=h).json()["_meta"]["hostvars"]


def test_a_signal_read_started_after_a_request_came_is_shared(ctx) -> None:
    """A request shares the change signal read by another only if that read started after the
    request arrived: every change committed before it came is then in the shared snapshot."""
    import time

    from sqlalchemy import event

    from dgxie import db
    from dgxie.api.readcache import ReadCache
    from dgxie.nodes.schemas import NodeCreate
    from dgxie.nodes.service import create_node

    reads: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if "max(events.id)" in statement:
            reads.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", count)
    cache = ReadCache()
    with ctx.engine.connect() as conn:
        came = time.monotonic()
        first = cache.signal(conn, came)
        assert cache.signal(conn, came) == first and len(reads) == 1 and cache.shared == 1
        assert cache.signal(conn) == first and len(reads) == 2  # a caller without an arrival reads
        with db.session_scope(ctx.sessions) as s:
            create_node(s, ctx.site, NodeCreate(hostname="late", mac="02:00:00:00:0a:01"), actor="t")
        came = time.monotonic()  # after the commit, and after every read so far started
        assert cache.signal(conn, came) != first and len(reads) == 3
        assert cache.signal(conn, came - 60) != first and len(reads) == 3  # an earlier arrival shares
    event.remove(ctx.engine, "before_cursor_execute", count)
