"""A SQLAlchemy Core `SELECT` run on the driver's own cursor (issue 14), for the hottest reads
(one node by hostname or MAC, a MAC's boot target).

`Connection.execute` of a prebuilt statement still pays, on every call, for SQLAlchemy's execution
context, its result metadata, its events and its row objects: ~40% of a one-node read's CPU on
PostgreSQL, three times the driver's own work (py-spy, bench/RESULTS.md). `Direct` compiles the
statement once for a dialect and keeps what those steps would compute: the SQL text, the order of
its parameters (positional paramstyles) and each column's result processor
(`TypeEngine.dialect_impl(dialect).result_processor`: `UTCDateTime`, SQLite's JSON and booleans).
Its rows carry the same values, under the same names, as `Connection.execute(stmt, params)`.

Errors stay SQLAlchemy's: when the driver raises, the statement runs again through
`Connection.execute`, the one home of disconnect detection, invalidation and the wrapped
exceptions the app answers (`db.UNAVAILABLE` is a 503); a transient error is then simply retried
once. Only statements that need nothing done to their parameters are taken (no bind processors,
no expanding or literal-execute parameters): anything else is refused when compiled.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import Select


class Direct:
    """`stmt` compiled for `dialect`, run on a connection's driver cursor (`all`)."""

    def __init__(self, stmt: Select[Any], dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("an expanding or literal-execute parameter needs SQLAlchemy's execution")
        for name, bind in compiled.binds.items():
            if bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
                raise ValueError(f"parameter {name!r} needs its type's bind processor")
        columns = list(stmt.selected_columns)
        self.stmt, self.sql = stmt, compiled.string
        self.positions: list[str] | None = list(compiled.positiontup) if compiled.positiontup else None
        row: Any = namedtuple("_row", [str(c.key) for c in columns])  # type: ignore[misc]
        self._make: Callable[[Iterable[Any]], Any] = row._make
        self._processors = [(i, p) for i, c in enumerate(columns)
                            if (p := c.type.dialect_impl(dialect).result_processor(dialect, None)) is not None]

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Every row, each a named tuple with the statement's column names."""
        args: Any = params if self.positions is None else [params[n] for n in self.positions]
        try:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(self.sql, args)
                raw = cursor.fetchall()
            finally:
                cursor.close()
        except conn.dialect.loaded_dbapi.Error:
            return list(conn.execute(self.stmt, dict(params)).all())
        if not self._processors:
            return [self._make(r) for r in raw]
        rows = []
        for r in raw:
            values = list(r)
            for i, process in self._processors:
                values[i] = process(values[i])
            rows.append(self._make(values))
        return rows


class Prepared:
    """`stmt` as a `Direct` for whichever dialect runs it (compiled at its first use there)."""

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt
        self._compiled: dict[str, Direct] = {}

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        found = self._compiled.get(conn.dialect.name)
        if found is None:
            found = self._compiled[conn.dialect.name] = Direct(self.stmt, conn.dialect)
        return found.all(conn, params)

