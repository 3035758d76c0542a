"""SQL run on the database driver's own connection, for the hot paths where SQLAlchemy's per-statement work
cost more than the statements (docs/PERFORMANCE.md): one text for SQLite and PostgreSQL, values converted by the
columns' own SQLAlchemy types, DBAPI errors raised as SQLAlchemy's, a dropped connection retried once."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Column, exc
from sqlalchemy.engine import Dialect, Engine

from relay.db import begin_immediate

T = TypeVar("T")
_NAMED = re.compile(r"(?<![:\w]):(\w+)")


def _identity(value: Any) -> Any:
    return value


def _processor(column: Column | None, dialect: Dialect, results: bool) -> Callable:
    """The column type's own conversion of a value to the driver (or, with `results`, from it)."""
    if column is None:
        return _identity
    impl = column.type.dialect_impl(dialect)
    return (impl.result_processor(dialect, None) if results else impl.bind_processor(dialect)) or _identity


class Sql:
    """One statement in `:name` style; `binds` and `results` name the columns whose types convert the values."""

    def __init__(self, text: str, binds: Mapping[str, Column] | None = None,
                 results: Sequence[Column | None] = ()):
        self.text = text
        self.binds = dict(binds or {})
        self.results = tuple(results)
        self._by_dialect: dict[str, tuple[str, dict[str, Callable], list[tuple[int, Callable]]]] = {}

    def prepared(self, dialect: Dialect) -> tuple[str, dict[str, Callable], list[tuple[int, Callable]]]:
        """(driver text, converters of the binds and (column, converter) of the results that need one)."""
        ready = self._by_dialect.get(dialect.name)
        if ready is None:
            text = self.text if dialect.name == "sqlite" else _NAMED.sub(r"%(\1)s", self.text.replace("%", "%%"))
            binds = {name: _processor(column, dialect, False) for name, column in self.binds.items()}
            binds = {name: convert for name, convert in binds.items() if convert is not _identity}
            results = [(i, convert) for i, convert in enumerate(_processor(c, dialect, True) for c in self.results)
                       if convert is not _identity]  # only the columns that need it
            ready = self._by_dialect[dialect.name] = (text, binds, results)
        return ready


class Tx:
    """One transaction on a DBAPI cursor."""

    def __init__(self, cursor, dialect: Dialect):
        self.cursor = cursor
        self.dialect = dialect

    @property
    def postgresql(self) -> bool:
        return self.dialect.name == "postgresql"

    def _params(self, binds: dict[str, Callable], params: Mapping[str, Any]) -> dict[str, Any]:
        values = dict(params)
        for name, convert in binds.items():
            if values.get(name) is not None:
                values[name] = convert(values[name])
        return values

    def rows(self, sql: Sql, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """Run one statement that returns rows; its rows, each value converted by its result column."""
        text, binds, results = sql.prepared(self.dialect)
        self.cursor.execute(text, self._params(binds, params or {}))
        rows = self.cursor.fetchall()
        if not results:
            return rows
        converted = []
        for row in rows:
            values = list(row)
            for i, convert in results:
                if values[i] is not None:
                    values[i] = convert(values[i])
            converted.append(tuple(values))
        return converted

    def run(self, sql: Sql, params: Mapping[str, Any] | None = None) -> None:
        """Run one statement for its effect."""
        text, binds, _ = sql.prepared(self.dialect)
        self.cursor.execute(text, self._params(binds, params or {}))

    def run_many(self, sql: Sql, rows: Sequence[Mapping[str, Any]]) -> None:
        text, binds, _ = sql.prepared(self.dialect)
        if len(rows) == 1:  # psycopg's executemany sets up a pipeline: for one row, more work than the row
            self.cursor.execute(text, self._params(binds, rows[0]))
        else:
            self.cursor.executemany(text, [self._params(binds, row) for row in rows])


class Driver:
    """An engine's pooled DBAPI connections used directly.

    No pre-ping per checkout: a connection the server dropped (a restart) fails its first statement, and the
    whole unit of work runs once more on a fresh connection from a fresh pool."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect
        self._errors = engine.dialect.loaded_dbapi.Error

    def run(self, work: Callable[[Tx], T], write: bool = True) -> T:
        """`work` in one transaction (committed when it returns), or one autocommitted read with write=False.

        Raises SQLAlchemy's exceptions (OperationalError, IntegrityError...) as the rest of the relay expects."""
        for attempt in (1, 2):
            try:
                raw = self.engine.raw_connection()
            except self._errors as error:  # no connection at all: the engine does not wrap this one
                raise exc.DBAPIError.instance(None, None, error, self._errors, dialect=self.dialect) from error
            dbapi = raw.dbapi_connection
            cursor = None
            try:
                if not write and self.dialect.name == "postgresql":
                    dbapi.autocommit = True
                elif write and self.dialect.name == "sqlite":
                    begin_immediate(dbapi)
                cursor = dbapi.cursor()
                result = work(Tx(cursor, self.dialect))
                if write:
                    dbapi.commit()
                return result
            except self._errors as error:
                dropped = self.dialect.is_disconnect(error, dbapi, cursor)
                _quietly(dbapi.rollback)
                if dropped:
                    raw.invalidate(error)
                    self.engine.dispose(close=False)  # the others in the pool were dropped as well
                    if attempt == 1:
                        continue
                raise exc.DBAPIError.instance(None, None, error, self._errors,
                                              connection_invalidated=dropped, dialect=self.dialect) from error
            except BaseException:
                _quietly(dbapi.rollback)
                raise
            finally:
                if cursor is not None:
                    _quietly(cursor.close)
                if not write and self.dialect.name == "postgresql" and raw.is_valid:
                    _quietly(functools.partial(setattr, dbapi, "autocommit", False))
                raw.close()
        raise AssertionError("unreachable")


def _quietly(action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception:  # the connection is already broken; the error that matters is being raised
        pass
