"""Writes on the hot paths, from prebuilt statements: one executemany per statement for
the ingest paths (task runs, logs), and single rows for run creation.

SQLAlchemy passes every value of an executemany through its column type's bind
processor; for 500 task runs and their states that is some 20,000 Python calls, most
of the request. On SQLite (a `LoopSession`) we compile each statement once and give
the driver rows already in the form those processors produce (UUID hex, naive-UTC
ISO text, JSON text); a column of any other processed type goes through its own
processor. A single row (`execute_row`) goes straight to the driver's cursor: for a
small INSERT, SQLAlchemy's execution context costs more than SQLite's work. Columns a
row leaves out get their Python-side default (`default=` on the column), as
SQLAlchemy would give them. Other dialects take SQLAlchemy's usual path.
"""

from __future__ import annotations

import functools
import json
import operator
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from weir.server.db.sqlite import LoopSession
from weir.server.db.types import Timestamp

Convert = Callable[[Any], Any]
# SQL text, the row's values in parameter order, and (position, converter) pairs
Compiled = tuple[str, Callable[[dict[str, Any]], Any], list[tuple[int, Convert]]]
# keyed by the statement itself (identity hash), which keeps it alive
_compiled: dict[tuple[Any, tuple[str, ...]], Compiled] = {}


async def executemany(
    session: AsyncSession | LoopSession, statement: sa.Executable, rows: Sequence[dict[str, Any]]
) -> None:
    """Run `statement` once per row (all rows have the same keys). `statement` should be
    built once and reused: on SQLite its compiled form is cached with it."""
    if not rows:
        return
    if not isinstance(session, LoopSession):
        await session.execute(statement, rows)
        return
    connection = session.connection
    sql, values_of, converters = _compile(statement, connection.dialect, tuple(rows[0]))
    params = []
    for row in rows:
        values = list(values_of(row))
        for i, convert in converters:
            values[i] = convert(values[i])
        params.append(tuple(values))
    connection.exec_driver_sql(sql, params)


async def execute_row(
    session: AsyncSession | LoopSession, statement: sa.Executable, row: dict[str, Any]
) -> int:
    """Run `statement` (built once and reused, as for `executemany`) with one row, in
    the session's transaction; the number of rows it changed."""
    if not isinstance(session, LoopSession):
        result = await session.execute(statement, row)
        return int(result.rowcount)  # type: ignore[attr-defined]
    connection = session.connection
    assert connection.in_transaction(), "a write session's transaction"
    sql, values_of, converters = _compile(statement, connection.dialect, tuple(row))
    values = list(values_of(row))
    for i, convert in converters:
        values[i] = convert(values[i])
    driver = connection.connection.dbapi_connection
    assert driver is not None
    try:
        return int(driver.execute(sql, values).rowcount)
    except sqlite3.Error as exc:  # wrapped as SQLAlchemy wraps it: the API's error handlers
        raise sa.exc.DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc


def _compile(statement: sa.Executable, dialect: Dialect, keys: tuple[str, ...]) -> Compiled:
    cache_key = (statement, keys)
    hit = _compiled.get(cache_key)
    if hit is not None:
        return hit
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))  # type: ignore[attr-defined]
    names = compiled.positiontup
    assert names, "SQLite's paramstyle is positional"
    converters = []
    for i, name in enumerate(names):
        convert = _converter(compiled.binds[name].type, dialect)
        if convert is not None:
            converters.append((i, convert))
    defaults = {
        column.key: _default_of(column)
        for column in getattr(compiled, "insert_prefetch", ())
        if column.key not in keys
    }
    if defaults:
        values_of = _with_defaults(names, defaults)
    else:
        values_of = operator.itemgetter(*names) if len(names) > 1 else _one(names[0])
    _compiled[cache_key] = hit = (compiled.string, values_of, converters)
    return hit


def _one(name: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    return lambda row: (row[name],)


def _default_of(column: sa.Column[Any]) -> Callable[[], Any]:
    """The column's Python-side default as SQLAlchemy computes it: a scalar, or the
    result of a callable such as `dict` (called once per row)."""
    default = column.default
    if isinstance(default, sa.ColumnDefault) and default.is_scalar:
        value = default.arg
        return lambda: value
    if isinstance(default, sa.ColumnDefault) and default.is_callable:
        make = default.arg
        return lambda: make(None)  # no execution context: weir's defaults need none
    raise NotImplementedError(f"the default of {column} is not a scalar or a callable")


def _with_defaults(
    names: Sequence[str], defaults: dict[str, Callable[[], Any]]
) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    def values_of(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] if name in row else defaults[name]() for name in names)

    return values_of


def _converter(type_: Any, dialect: Dialect) -> Convert | None:
    if isinstance(type_, Timestamp):
        return _sqlite_time
    if isinstance(type_, sa.Uuid):
        return _uuid_hex
    if isinstance(type_, sa.JSON):
        return _json_text
    processor = type_._cached_bind_processor(dialect)
    return processor  # None (the value as is) for strings, numbers


def _uuid_hex(value: uuid.UUID | None) -> str | None:
    return None if value is None else value.hex


@functools.lru_cache(maxsize=4096)  # a run's row repeats its states' times and `now`
def _sqlite_time(value: datetime | None) -> str | None:
    """What `Timestamp` then SQLite's DATETIME store: naive UTC, microseconds always."""
    if value is None:
        return None
    offset = value.utcoffset()
    if offset is not None:
        value = (value - offset).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _json_text(value: Any) -> str:
    # sa.JSON stores Python None as JSON null (none_as_null is off)
    if value is None:
        return "null"
    if value == []:
        return "[]"
    return json.dumps(value)
