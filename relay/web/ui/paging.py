"""Keyset pagination on (timestamp, id): every page is one index range scan, however deep."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_


@dataclass
class Page:
    rows: list[Any]
    older: str | None  # cursor for the next page towards the past
    newer: str | None  # cursor for the page before, towards now


def encode(at: datetime, ident: Any) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{ident}".encode()).decode().rstrip("=")


def decode(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, ident = raw.split("|", 1)
        return datetime.fromisoformat(at), ident
    except (ValueError, UnicodeDecodeError):
        return None


def keyset(session, query, at_column, id_column, size: int, before: str | None, after: str | None,
           id_type=str) -> Page:
    """Rows newest first; `before` pages to older rows, `after` back to newer ones."""
    older_than, newer_than = decode(before), decode(after)
    if newer_than:
        at, ident = newer_than
        query = query.where(or_(at_column > at, and_(at_column == at, id_column > id_type(ident))))
        rows = list(session.scalars(query.order_by(at_column.asc(), id_column.asc()).limit(size + 1)))
        more_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        more_older = True
    else:
        if older_than:
            at, ident = older_than
            query = query.where(or_(at_column < at, and_(at_column == at, id_column < id_type(ident))))
        rows = list(session.scalars(query.order_by(at_column.desc(), id_column.desc()).limit(size + 1)))
        more_older = len(rows) > size
        rows = rows[:size]
        more_newer = older_than is not None
    at_name, id_name = at_column.key, id_column.key
    first, last = (rows[0], rows[-1]) if rows else (None, None)
    return Page(rows=rows,
                older=encode(getattr(last, at_name), getattr(last, id_name)) if more_older and last else None,
                newer=encode(getattr(first, at_name), getattr(first, id_name)) if more_newer and first else None)
