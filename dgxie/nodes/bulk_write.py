"""Write many rows of one table in the caller's transaction, fast, and learn their ids in order.

- PostgreSQL: ids drawn from the table's sequence in one query, then `COPY ... FROM STDIN`
  (psycopg's binary-safe row writer): SQLAlchemy's multi-row INSERT spends most of its time in
  the driver re-parsing a statement with thousands of parameters (measured: ~3,000 nodes/s with
  three INSERTs, the Python side the bottleneck).
- SQLite: the first row by `INSERT ... RETURNING id`, the rest by one Core executemany with their
  ids given (the next ones after it). SQLite gives a new row max(id) + 1 and the first INSERT takes
  its database write lock, held to the commit, so no other writer can take those ids; SQLAlchemy's
  `sort_by_parameter_order` RETURNING was one statement per row on SQLite (0.6 s per 10,000).
- Anything else: one `INSERT ... RETURNING` per page through SQLAlchemy, ids in parameter order
  (`sort_by_parameter_order`).

Column values are plain Python (JSON columns take dicts and lists); Python-side column defaults
(`default=utcnow`, `default=list`) are applied here for COPY, which knows only server defaults.
A unique violation is `sqlalchemy.exc.IntegrityError` on both paths, so callers catch one thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any, cast

from sqlalchemy import JSON, Table, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dgxie.db import Base


def insert_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]], *,
                ids: bool = True) -> list[int]:
    """Insert `rows` (dicts of column name -> value) into `model`'s table; their new ids, in order
    (`ids=False`: not needed, [] returned; SQLite then inserts without RETURNING, much faster)."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _copy(session, cast(Table, model.__table__), rows)
    if dialect == "sqlite":
        return _sqlite(session, cast(Table, model.__table__), rows, ids=ids)
    if not ids:
        session.execute(insert(model), list(rows))
        return []
    return list(session.scalars(insert(model).returning(model.__table__.c.id, sort_by_parameter_order=True),
                                list(rows)))


def _sqlite(session: Session, table: Table, rows: Sequence[dict[str, Any]], *, ids: bool) -> list[int]:
    """Core executemany (the ORM's bulk INSERT costs as much again in Python), one per run of rows
    naming the same columns, in order; with `ids`, the first row alone first (see the module's docstring)."""
    new: list[int] = []
    if ids:
        first = session.scalar(insert(table).returning(table.c.id), dict(rows[0]))
        assert first is not None
        new = list(range(first, first + len(rows)))
        rows = [{**row, "id": row_id} for row_id, row in zip(new[1:], rows[1:], strict=True)]
    for _, run in groupby(rows, key=lambda row: row.keys()):
        session.execute(insert(table), list(run))
    return new


def _copy(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    import psycopg
    from psycopg.types.json import Jsonb

    ids = list(session.scalars(text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
                               {"t": table.name, "n": len(rows)}))
    given = sorted(set().union(*(r.keys() for r in rows)))
    defaults = sorted((c.name, getattr(c.default, "arg", None)) for c in table.columns
                      if c.name not in given and c.name != "id" and c.default is not None)
    names = ["id", *given, *(name for name, _ in defaults)]
    json_cols = {c.name for c in table.columns  # JSON, or a decorator of it (models.types.JSONType)
                 if isinstance(c.type, JSON) or isinstance(getattr(c.type, "impl", None), JSON)}
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)

    def cell(name: str, value: Any) -> Any:
        return Jsonb(value) if name in json_cols and value is not None else value

    try:
        with raw.cursor() as cur, cur.copy(
                f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as cp:  # names: our own columns
            for row_id, row in zip(ids, rows, strict=True):
                cp.write_row([row_id, *[cell(n, row.get(n)) for n in given],
                              *[cell(n, arg(None) if callable(arg) else arg) for n, arg in defaults]])
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(f"COPY {table.name}", None, exc) from None
    return ids
