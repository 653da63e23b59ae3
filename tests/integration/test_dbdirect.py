"""`dbdirect.Direct`: a Core select on the driver's cursor gives what `Connection.execute` gives,
on SQLite and PostgreSQL; the driver's errors come out as SQLAlchemy's."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from dgxie import db
from dgxie.context import Context
from dgxie.dbdirect import Direct, Prepared
from dgxie.models import Node
from dgxie.nodes import service
from dgxie.nodes.reads import _Statements
from dgxie.nodes.schemas import BmcIn, InterfaceIn, NodeCreate

N = Node.__table__


@pytest.fixture
def engine(ctx: Context) -> Engine:
    return ctx.engine


def test_rows_are_those_of_connection_execute(ctx: Context) -> None:
    """The node read's statement (UTC datetimes, JSON, a boolean, a JSON subquery) on a node with
    facts, tags, two interfaces and a BMC password."""
    engine = ctx.engine
    with db.session_scope(ctx.sessions) as s:
        service.create_node(s, ctx.site, NodeCreate(
            hostname="gpu01", mac="02:00:00:00:00:01", role="slurmd", tags=["h100", "rack1"],
            interfaces=[InterfaceIn(mac="02:00:00:00:00:02", name="eno2")],
            facts={"gpus": 8, "nested": {"a": [1, 2.5, None]}}, vars={"k": "v"},
            bmc=BmcIn(url="https://10.0.0.9", username="admin", password="s3cret")), actor="t")
    stmt = _Statements(engine.dialect).by_hostname.stmt
    direct = Direct(stmt, engine.dialect)
    with engine.connect() as conn:
        mine = direct.all(conn, {"hostname": "gpu01"})
        theirs = conn.execute(stmt, {"hostname": "gpu01"}).all()
        assert direct.all(conn, {"hostname": "nobody"}) == []
    assert [tuple(r) for r in mine] == [tuple(r) for r in theirs] and len(mine) == 1
    assert mine[0]._fields == tuple(theirs[0]._fields)
    row = mine[0]
    assert row.created_at.tzinfo is UTC and row.password_set is True and row.facts["nested"] == {"a": [1, 2.5, None]}


def test_a_driver_error_is_sqlalchemys_error(engine: Engine) -> None:
    missing = Table("no_such_table", MetaData(), Column("id", Integer))
    direct = Direct(select(missing.c.id).where(missing.c.id == bindparam("id")), engine.dialect)
    with engine.connect() as conn, pytest.raises(sa_exc.DBAPIError, match="no_such_table"):
        direct.all(conn, {"id": 1})


def test_statements_needing_sqlalchemys_execution_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="expanding"):
        Direct(select(N.c.id).where(N.c.id.in_(bindparam("ids", expanding=True))), engine.dialect)
    with pytest.raises(ValueError, match="bind processor"):
        Direct(select(N.c.id).where(N.c.created_at > bindparam("t", type_=N.c.created_at.type)), engine.dialect)


def test_prepared_compiles_for_the_dialect_that_runs_it(engine: Engine) -> None:
    stmt = select(N.c.id, N.c.created_at).where(N.c.hostname == bindparam("h"))
    prepared = Prepared(stmt)
    with engine.connect() as conn:
        assert prepared.all(conn, {"h": "nobody"}) == []
        assert prepared._compiled[engine.dialect.name].sql == Direct(stmt, engine.dialect).sql
