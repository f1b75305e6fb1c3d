"""Keyset pagination: pages ordered by (sort column, id), continued after a cursor.

A cursor is opaque to clients: url-safe base64 of `[sort, value, id]` for the last
row of a page. The next page starts strictly after that key, so rows inserted or
deleted meanwhile never shift a page (no duplicates, no gaps, unlike OFFSET).
NULLs of a nullable sort column come last in both directions.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
import sqlalchemy as sa

MAX_OFFSET = 1 << 62


class InvalidPage(ValueError):
    """A cursor or offset the server cannot continue from; its message is for people."""


def require_offset(cursor: str | None, what: str) -> None:
    """Refuse a cursor for `what` (plural), which pages by offset only: ignored, it would
    have a client ask for the first page again and again."""
    if cursor:
        raise InvalidPage(f"{what} page by offset; cursor is not supported here.")


@dataclass(frozen=True, slots=True)
class SortKey:
    """A sort order: `column` (None to sort by id alone), its kind, and direction."""

    name: str
    column: Any
    kind: Literal["time", "text", "id"]
    descending: bool


def sort_entry(
    sort: str, column: Any, kind: Literal["time", "text", "id"], descending: bool
) -> tuple[SortKey, str | None]:
    """A repository's entry for one sort of the API: its key, and the row field it reads."""
    return SortKey(str(sort), column, kind, descending), (None if column is None else column.name)


def order_by(key: SortKey, id_column: Any) -> list[Any]:
    by_id = id_column.desc() if key.descending else id_column.asc()
    if key.column is None:
        return [by_id]
    by_value = key.column.desc() if key.descending else key.column.asc()
    return [by_value.nulls_last(), by_id]


def after(key: SortKey, id_column: Any, value: Any, last_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """Rows strictly after (value, last_id) in the order of `order_by`."""
    beyond = (lambda a, b: a < b) if key.descending else (lambda a, b: a > b)
    if key.column is None:
        return beyond(id_column, last_id)
    column = key.column
    if value is None:  # already among the NULLs, which come last
        return sa.and_(column.is_(None), beyond(id_column, last_id))
    return sa.or_(
        beyond(column, value),
        sa.and_(column == value, beyond(id_column, last_id)),
        column.is_(None),
    )


def encode_cursor(key: SortKey, value: Any, last_id: uuid.UUID) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = orjson.dumps([key.name, value, str(last_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(key: SortKey, cursor: str) -> tuple[Any, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, value, last_id = orjson.loads(raw)
        last = uuid.UUID(last_id)
        if value is not None:
            if key.kind == "time":
                value = datetime.fromisoformat(value)
            elif not isinstance(value, str):
                raise TypeError(value)
    except (binascii.Error, ValueError, TypeError, AttributeError, orjson.JSONDecodeError):
        raise InvalidPage(
            "The cursor is not valid; pass the X-Next-Cursor header of the previous page."
        ) from None
    if name != key.name:
        raise InvalidPage(
            f"The cursor belongs to sort {name}, not {key.name}; keep the sort while paging."
        )
    return value, last


def paginate(
    statement: sa.Select[Any],
    key: SortKey,
    id_column: Any,
    *,
    limit: int,
    offset: int,
    cursor: str | None,
) -> sa.Select[Any]:
    """Order, continue after `cursor` (if any), and limit `statement`."""
    if offset > MAX_OFFSET:
        raise InvalidPage(f"offset: must be at most {MAX_OFFSET}.")
    if cursor:
        if offset:
            raise InvalidPage("Give either a cursor or an offset, not both.")
        value, last_id = decode_cursor(key, cursor)
        statement = statement.where(after(key, id_column, value, last_id))
    statement = statement.order_by(*order_by(key, id_column)).limit(limit)
    return statement.offset(offset) if offset else statement


def next_cursor(
    key: SortKey, rows: Sequence[Any], limit: int, value_field: str | None
) -> str | None:
    """The cursor after the last row when the page is full, else None."""
    if len(rows) < limit or not rows:
        return None
    last = rows[-1]
    value = last[value_field] if value_field else None
    return encode_cursor(key, value, last["id"])
