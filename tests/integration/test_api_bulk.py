"""`POST /api/v1/nodes/bulk` on SQLite and PostgreSQL: all nodes or none, every bad row named in one
error, each node enrolled as by a single POST (boot token, profile by mac_match, BMC password
sealed, one `node.create` event each)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, func, select

from dgxie import db
from dgxie.errors import Conflict
from dgxie.models import Event, Interface, Node
from dgxie.nodes import bulk
from dgxie.nodes.schemas import NodeCreate


def _mac(i: int) -> str:
    return f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"


def _rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"hostname": f"gpu{i:05d}", "mac": _mac(i), "tags": ["rack1"]} for i in range(start, start + n)]


def _count(ctx: Any, model: Any) -> int:
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_bulk_enrolls_every_node_with_its_event(client, auth, ctx) -> None:
    client.post("/api/v1/images", json={"name": "img", "os": "other", "kernel": "k", "initrd": "i"},
                headers=auth("admin"))
    r = client.post("/api/v1/profiles", json={"name": "matched", "image": "img", "template": "external",
                                              "vars": {"mac_match": "02:00:00:00:00:0"}}, headers=auth("admin"))
    assert r.status_code == 201, r.text
    rows = _rows(1200)
    rows[1]["bmc"] = {"url": "https://10.0.1.11", "username": "admin", "password": "s3cret-pw"}
    rows[2]["state"] = "discovered"
    r = client.post("/api/v1/nodes/bulk", json={"nodes": rows}, headers=auth("operator"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] == 1200 and len(body["nodes"]) == 1200 and "s3cret-pw" not in r.text
    assert body["nodes"][0] == {"id": body["nodes"][0]["id"], "hostname": "gpu00000", "mac": _mac(0),
                                "profile": "matched", "state": "enrolled"}
    assert body["nodes"][16]["profile"] is None  # 02:00:00:00:00:10 does not match
    assert body["nodes"][2]["state"] == "discovered"
    one = client.get("/api/v1/nodes/gpu00001", headers=auth("viewer")).json()
    assert one["bmc"] == {"url": "https://10.0.1.11", "username": "admin", "password_set": True}
    assert one["tags"] == ["rack1"]
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Node).where(Node.boot_token_hash.is_(None))) == 0
        kinds = s.execute(select(Event.kind, func.count()).where(Event.node_id.is_not(None))
                          .group_by(Event.kind)).all()
    assert dict(kinds) == {"node.create": 1200}
    # the nodes boot: a script per MAC
    assert client.get(f"/boot/ipxe?mac={_mac(5)}").status_code == 200


def test_bad_rows_are_all_named_and_nothing_is_written(client, auth, ctx) -> None:
    assert client.post("/api/v1/nodes", json={"hostname": "taken", "mac": _mac(900), "ip": "10.0.0.9"},
                       headers=auth("operator")).status_code == 201
    viewer = auth("viewer")  # its token (and that event) made before counting
    before = (_count(ctx, Node), _count(ctx, Event))
    rows = _rows(10)
    rows[3]["mac"] = _mac(900)  # another node's MAC
    rows[4]["hostname"] = "gpu00001"  # another row's hostname
    rows[5]["profile"] = "nope"
    rows[6]["ip"] = "10.0.0.9"
    r = client.post("/api/v1/nodes/bulk", json={"nodes": rows}, headers=auth("operator"))
    assert r.status_code == 409, r.text
    assert r.json() == {"detail": "nothing enrolled: 4 error(s): "
                        f"nodes[3]: MAC {_mac(900)} belongs to node taken; "
                        "nodes[4]: hostname gpu00001 is also in nodes[1]; "
                        "nodes[5]: unknown profile 'nope'; "
                        "nodes[6]: IP 10.0.0.9 belongs to node taken"}
    r = client.post("/api/v1/nodes/bulk", json={"nodes": [rows[5]]}, headers=auth("operator"))
    assert r.status_code == 422 and r.json() == {"detail": "nothing enrolled: 1 error(s): nodes[0]: unknown "
                                                           "profile 'nope'"}
    r = client.post("/api/v1/nodes/bulk", json={"nodes": [{"hostname": "x y", "mac": "m"}]}, headers=auth("operator"))
    assert r.status_code == 422 and set(r.json()) == {"detail"}
    assert client.post("/api/v1/nodes/bulk", json={"nodes": []}, headers=auth("operator")).status_code == 422
    assert client.post("/api/v1/nodes/bulk", json={"nodes": rows}, headers=viewer).status_code == 403
    assert (_count(ctx, Node), _count(ctx, Event)) == before


def test_a_value_taken_after_the_check_is_a_conflict_and_nothing_is_written(client, auth, ctx) -> None:
    """A concurrent writer can take a MAC between the check and the write (simulated by skipping the
    check): the database's unique constraint is the arbiter, on COPY (PostgreSQL) and INSERT alike."""
    assert client.post("/api/v1/nodes", json={"hostname": "first", "mac": _mac(700)},
                       headers=auth("operator")).status_code == 201
    before = (_count(ctx, Node), _count(ctx, Event))
    rows = [bulk.Row(f"r{i}", NodeCreate(hostname=f"late{i}", mac=_mac(700 + i))) for i in range(3)]
    with pytest.raises(Conflict), db.session_scope(ctx.sessions) as s:
        bulk.create_nodes(s, ctx.site, rows, actor="test", checked=True)
    assert (_count(ctx, Node), _count(ctx, Event)) == before


def test_ids_are_each_rows_own_and_sqlite_inserts_the_nodes_in_two_statements(client, auth, ctx) -> None:
    """`create_nodes` returns each row's id (its interface and event name that node) after deletes
    left gaps and freed the highest id; on SQLite the nodes take two INSERTs, not one per row."""
    for i in range(3):
        assert client.post("/api/v1/nodes", json={"hostname": f"old{i}", "mac": _mac(800 + i)},
                           headers=auth("operator")).status_code == 201
    for name in ("old0", "old2"):  # a gap, and the highest id freed (SQLite gives it out again)
        assert client.delete(f"/api/v1/nodes/{name}", headers=auth("admin")).status_code == 204
    rows = [bulk.Row(f"r{i}", NodeCreate.model_validate(r)) for i, r in enumerate(_rows(700))]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", seen)
    try:
        with db.session_scope(ctx.sessions) as s:
            made = bulk.create_nodes(s, ctx.site, rows, actor="test")
    finally:
        event.remove(ctx.engine, "before_cursor_execute", seen)
    assert [m.hostname for m in made] == [r.data.hostname for r in rows] and len({m.id for m in made}) == 700
    with ctx.sessions() as s:
        by_id = dict(s.execute(select(Node.id, Node.hostname)).all())
        macs = dict(s.execute(select(Interface.node_id, Interface.mac)).all())
        events = dict(s.execute(select(Event.node_id, Event.hostname).where(Event.kind == "node.create")).all())
    for m in made:
        assert (by_id[m.id], macs[m.id], events[m.id]) == (m.hostname, m.mac, m.hostname)
    if ctx.engine.dialect.name == "sqlite":
        assert sum(1 for st in statements if st.startswith("INSERT INTO nodes")) == 2


def test_insert_rows_fills_defaults_once_per_batch_and_a_missing_key(ctx) -> None:
    """`bulk_write.insert_rows`: a key one row lacks takes the column's default (NULL without one),
    every default function is called once for the batch (one instant for every timestamp), the
    values are stored as the ORM stores them (JSON, UTC datetimes), ids in row order."""
    from dgxie.nodes.bulk_write import insert_rows

    rows: list[dict[str, Any]] = [{"actor": "a", "kind": "k", "reason": "r", "data": {"x": [1, "é"]}, "hostname": "h"},
                                  {"actor": "b", "kind": "k", "reason": "r"}, {"actor": "c", "kind": "k"}]
    with db.session_scope(ctx.sessions) as s:
        ids = insert_rows(s, Event, rows)
    assert ids == sorted(ids) and len(set(ids)) == 3
    with ctx.sessions() as s:
        got = {e.id: e for e in s.scalars(select(Event).where(Event.id.in_(ids)))}
    assert [(got[i].actor, got[i].data, got[i].hostname, got[i].reason) for i in ids] == [
        ("a", {"x": [1, "é"]}, "h", "r"), ("b", {}, None, "r"), ("c", {}, None, "")]
    assert len({got[i].time for i in ids}) == 1 and got[ids[0]].time.utcoffset() is not None
    with db.session_scope(ctx.sessions) as s:
        made = bulk.create_nodes(s, ctx.site, [bulk.Row(f"r{i}", NodeCreate.model_validate(r))
                                               for i, r in enumerate(_rows(3, start=900))], actor="test")
    with ctx.sessions() as s:
        stamps = s.execute(select(Node.created_at, Node.updated_at, Node.state_changed_at)
                           .where(Node.id.in_([m.id for m in made]))).all()
    assert len({t for row in stamps for t in row}) == 1


def test_sqlite_statement_journals_are_in_memory(ctx) -> None:
    """`PRAGMA temp_store=MEMORY` on every SQLite connection: a statement on a table with triggers
    (nodes) keeps a statement journal, a temporary file per statement otherwise."""
    if ctx.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with ctx.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2
