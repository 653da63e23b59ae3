"""Write many rows of one table in the caller's transaction, fast, and learn their ids in order.

- PostgreSQL, from `COPY_FROM` rows: ids drawn from the table's sequence in one query, then `COPY ... FROM STDIN`
  (psycopg's binary-safe row writer): SQLAlchemy's multi-row INSERT spends most of its time in
  the driver re-parsing a statement with thousands of parameters (measured: ~3,000 nodes/s with
  three INSERTs, the Python side the bottleneck).
- SQLite: the first row by `INSERT ... RETURNING id`, the rest by one driver executemany with their
  ids given (the next ones after it). SQLite gives a new row max(id) + 1 and the first INSERT takes
  its database write lock, held to the commit, so no other writer can take those ids; SQLAlchemy's
  `sort_by_parameter_order` RETURNING was one statement per row on SQLite (0.6 s per 10,000). Each
  value goes through its column type's bind processor, as SQLAlchemy's executemany would send it
  (JSON text, SQLite's DATETIME strings), without that executemany's per-row Python (~20 us a row).
- PostgreSQL, fewer than `COPY_FROM` rows (a group commit of single enrolments: the ids'
  `nextval` and the COPY's start and end were three round trips per table): one single-row
  `INSERT ... RETURNING id` sent for every row in one pipeline (psycopg's `executemany`, one
  round trip), ids in row order. SQLAlchemy's multi-row INSERT had a new text for each batch size
  and past 50 parameters psycopg parsed it anew every time (~15% of the writer's CPU); one
  single-row text is parsed once and prepared by the server after five uses.
- Anything else: one `INSERT ... RETURNING` per page through SQLAlchemy Core, ids in parameter
  order (`sort_by_parameter_order`).

Column values are plain Python (JSON columns take dicts and lists); Python-side column defaults
(`default=utcnow`, `default=list`) are applied here (COPY knows only server defaults), each
function called once per call: a batch is written at one instant (every row's `created_at`,
`updated_at` and `state_changed_at`, and every event's `time`, is the same `utcnow()`: one
transaction's rows). A row missing a key that others have gets that column's default, or NULL.
A unique violation is `sqlalchemy.exc.IntegrityError` on both paths, so callers catch one thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import JSON, Table, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dgxie.db import Base

COPY_FROM = 32  # rows from which COPY beats a multi-row INSERT on PostgreSQL (COPY costs 2 round trips more)


def insert_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]], *,
                ids: bool = True) -> list[int]:
    """Insert `rows` (dicts of column name -> value) into `model`'s table; their new ids, in order
    (`ids=False`: not needed, [] returned; SQLite then inserts without RETURNING, much faster)."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    table = cast(Table, model.__table__)
    if dialect == "postgresql":
        return _copy(session, table, rows) if len(rows) >= COPY_FROM else _pipelined(session, table, rows, ids=ids)
    if dialect == "sqlite":
        return _sqlite(session, table, rows, ids=ids)
    names, defaults = _columns(table, rows)  # one instant for the batch, as on the other paths
    rows = [{n: row.get(n, defaults.get(n)) for n in names} for row in rows]
    conn = session.connection()  # Core: the ORM's bulk INSERT path cost ~1 ms more per statement
    if not ids:
        conn.execute(insert(table), list(rows))
        return []
    return list(conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows)).scalars())


def _columns(table: Table, rows: Sequence[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """The columns to write (every key of `rows`, then each other column with a Python-side
    default but the id) and every such column's default value, for the rows that lack its key:
    each default function called once for the whole batch (one `utcnow()` for every row's
    `created_at`, `updated_at`, `state_changed_at`)."""
    given = sorted(set().union(*(r.keys() for r in rows)) - {"id"})
    defaults: dict[str, Any] = {}
    made: dict[Any, Any] = {}  # each default function called once: `created_at == updated_at`
    for c in table.columns:
        if c.name != "id" and c.default is not None:
            arg = getattr(c.default, "arg", None)
            if callable(arg):
                fn = getattr(arg, "__wrapped__", arg)  # SQLAlchemy's wrapper of `utcnow` -> utcnow
                defaults[c.name] = made[fn] if fn in made else made.setdefault(fn, arg(None))
            else:
                defaults[c.name] = arg
    return [*given, *(name for name in defaults if name not in given)], defaults


def _sqlite(session: Session, table: Table, rows: Sequence[dict[str, Any]], *, ids: bool) -> list[int]:
    """One executemany through the driver, each value converted by its column's type as SQLAlchemy
    would (SQLAlchemy's own executemany spent more in Python per row than SQLite in the insert);
    with `ids`, the first row alone first (see the module's docstring)."""
    conn = session.connection()
    dialect = conn.dialect
    names, defaults = _columns(table, rows)
    procs = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    preparer = dialect.identifier_preparer
    sql = (f"INSERT INTO {preparer.format_table(table)} (id, {', '.join(preparer.quote(n) for n in names)}) "
           f"VALUES ({', '.join('?' * (len(names) + 1))})")
    missing = object()

    def values(row_id: int | None, row: dict[str, Any]) -> tuple[Any, ...]:
        out: list[Any] = [row_id]
        for name, proc in zip(names, procs, strict=True):
            value = row.get(name, missing)
            if value is missing:
                value = defaults.get(name)
            out.append(value if proc is None else proc(value))
        return tuple(out)

    new: list[int] = []
    if ids:
        first = conn.exec_driver_sql(f"{sql} RETURNING id", values(None, rows[0])).scalar_one()
        new = list(range(first, first + len(rows)))
        rest = [values(row_id, row) for row_id, row in zip(new[1:], rows[1:], strict=True)]
    else:
        rest = [values(None, row) for row in rows]
    if rest:
        conn.exec_driver_sql(sql, rest)
    return new


def _pg_cells(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> tuple[Any, list[str], Any]:
    """The raw psycopg connection, the column names, and each row's values as psycopg takes them
    (JSON columns wrapped in `Jsonb`, defaults filled), for COPY and the pipelined INSERTs."""
    import psycopg
    from psycopg.types.json import Jsonb

    names, defaults = _columns(table, rows)
    json_cols = {c.name for c in table.columns  # JSON, or a decorator of it (models.types.JSONType)
                 if isinstance(c.type, JSON) or isinstance(getattr(c.type, "impl", None), JSON)}
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    missing = object()
    columns = [(n, n in json_cols, defaults.get(n)) for n in names]

    def cells(row: dict[str, Any]) -> list[Any]:
        out: list[Any] = []
        for name, is_json, default in columns:
            value = row.get(name, missing)
            if value is missing:
                value = default
            out.append(Jsonb(value) if is_json and value is not None else value)
        return out

    return raw, names, cells


def _pipelined(session: Session, table: Table, rows: Sequence[dict[str, Any]], *, ids: bool) -> list[int]:
    import psycopg

    raw, names, cells = _pg_cells(session, table, rows)
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})"
           + (" RETURNING id" if ids else ""))  # names: our own columns
    new: list[int] = []
    try:
        with raw.cursor() as cur:
            cur.executemany(sql, [cells(row) for row in rows], returning=ids)
            while ids:
                new.append(cur.fetchone()[0])
                if not cur.nextset():
                    break
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(f"INSERT INTO {table.name}", None, exc) from None
    return new


def _copy(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    import psycopg

    ids = list(session.scalars(text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
                               {"t": table.name, "n": len(rows)}))
    raw, names, cells = _pg_cells(session, table, rows)
    try:
        with raw.cursor() as cur, cur.copy(
                f"COPY {table.name} (id, {', '.join(names)}) FROM STDIN") as cp:  # names: our own columns
            for row_id, row in zip(ids, rows, strict=True):
                cp.write_row([row_id, *cells(row)])
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(f"COPY {table.name}", None, exc) from None
    return ids
