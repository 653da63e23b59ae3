"""`node_tags` (migration 0018) follows `nodes.tags` whoever writes it: the ORM, the bulk path
(COPY on PostgreSQL), a raw UPDATE, a delete; a migration from 0017 fills it from the nodes there;
and a tag filter through it answers what a scan of every node's JSON answers."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from sqlalchemy import select, text

from dgxie import db
from dgxie.context import Context
from dgxie.models import Node, NodeTag
from dgxie.nodes import bulk, service
from dgxie.nodes.schemas import NodeCreate, NodeUpdate


def _tags_table(ctx: Context) -> dict[str, set[str]]:
    with db.session_scope(ctx.sessions) as s:
        out: dict[str, set[str]] = {}
        for host, tag in s.execute(select(Node.hostname, NodeTag.tag).join(NodeTag, NodeTag.node_id == Node.id)):
            out.setdefault(host, set()).add(tag)
        return out


def _tags_json(ctx: Context) -> dict[str, set[str]]:
    with db.session_scope(ctx.sessions) as s:
        return {n.hostname: set(n.tags) for n in s.scalars(select(Node)) if n.tags}


def test_every_writer_keeps_node_tags_in_step(ctx: Context) -> None:
    with db.session_scope(ctx.sessions) as s:
        service.create_node(s, ctx.site, NodeCreate(hostname="a1", mac="02:00:00:00:00:01", tags=["r1", "gpu"]),
                            actor="t")
        service.create_node(s, ctx.site, NodeCreate(hostname="a2", mac="02:00:00:00:00:02"), actor="t")
        rows = [bulk.Row(f"r{i}", NodeCreate(hostname=f"b{i}", mac=f"02:00:00:00:01:{i:02x}",
                                             tags=[f"r{i % 3}", "gpu"])) for i in range(30)]
        bulk.create_nodes(s, ctx.site, rows, actor="t")
    assert _tags_table(ctx) == _tags_json(ctx)
    assert _tags_table(ctx)["b4"] == {"r1", "gpu"}

    with db.session_scope(ctx.sessions) as s:
        service.update_node(s, ctx.site, service.get_node(s, "a1"), NodeUpdate(tags=["r9"]), actor="t")
        service.update_node(s, ctx.site, service.get_node(s, "a2"), NodeUpdate(tags=["new"]), actor="t")
        service.update_node(s, ctx.site, service.get_node(s, "b0"), NodeUpdate(tags=[]), actor="t")
        service.update_node(s, ctx.site, service.get_node(s, "b1"), NodeUpdate(role="slurmd"), actor="t")
        value = "CAST(:t AS jsonb)" if ctx.engine.dialect.name == "postgresql" else ":t"
        s.execute(text(f"UPDATE nodes SET tags = {value} WHERE hostname = 'b2'"), {"t": json.dumps(["raw", "raw"])})
        service.delete_node(s, service.get_node(s, "b3"), actor="t")
    table, doc = _tags_table(ctx), _tags_json(ctx)
    assert table == doc
    assert table["a1"] == {"r9"} and table["a2"] == {"new"} and "b0" not in table and "b3" not in table
    assert table["b2"] == {"raw"} and table["b1"] == {"r1", "gpu"}


def test_tag_filter_answers_as_a_scan_would(ctx: Context) -> None:
    with db.session_scope(ctx.sessions) as s:
        rows = [bulk.Row(f"r{i}", NodeCreate(hostname=f"n{i:03d}", mac=f"02:00:00:00:02:{i:02x}",
                                             tags=[f"rack{i % 7}"] + (["odd"] if i % 2 else [])))
                for i in range(120)]
        bulk.create_nodes(s, ctx.site, rows, actor="t")
    with db.session_scope(ctx.sessions) as s:
        for tag in ("rack3", "odd", "rack", "nope"):
            nodes, total = service.list_nodes(s, tag=tag, limit=500)
            want = sorted(f"n{i:03d}" for i in range(120)
                          if tag == f"rack{i % 7}" or (tag == "odd" and i % 2))
            assert [n.hostname for n in nodes] == want and total == len(want)


def test_upgrade_from_0017_fills_node_tags(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    command.upgrade(db.alembic_config(url), "0017")
    engine = db.make_engine(url)
    with engine.begin() as conn:
        for i, tags in enumerate((["a", "b"], [], ["b", "b"])):
            conn.execute(text(
                "INSERT INTO nodes (hostname, state, tags, facts, vars, boot_nonce, state_changed_at, created_at, "
                "updated_at, progress_suppressed) VALUES (:h, 'enrolled', :t, '{}', '{}', :n, "
                "'2026-11-30 00:00:00', '2026-11-30 00:00:00', '2026-11-30 00:00:00', 0)"),
                {"h": f"old{i}", "t": json.dumps(tags), "n": f"nonce{i}"})
    engine.dispose()
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.connect() as conn:
        got = sorted(conn.execute(text("SELECT n.hostname, t.tag FROM node_tags t JOIN nodes n ON n.id = t.node_id")))
    engine.dispose()
    assert [tuple(r) for r in got] == [("old0", "a"), ("old0", "b"), ("old2", "b")]
