"""Engine and sessions for SQLite (WAL) and PostgreSQL, and the Alembic migrations runner."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from relay.config import ConfigError, Settings, private_dir

MIGRATIONS = Path(__file__).parent / "migrations"
READ_ONLY = "relay_read_only"
BUSY_TIMEOUT_MS = 30000


def make_engine(settings: Settings) -> Engine:
    if settings.is_sqlite:
        path = settings.database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            private_file(Path(path))
        engine = create_engine(settings.database_url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    url = settings.database_url
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    url, connect_args = _driver_options(make_url(url))
    # No pre-ping: a round trip per checkout on the hottest path. A connection the server dropped fails once; the
    # pool is then replaced (SQLAlchemy's disconnect handling, relay.driversql) and intake retries its transaction.
    return create_engine(url, pool_size=5, max_overflow=10, connect_args=connect_args)


def _driver_options(url: URL) -> tuple[URL, dict]:
    """`?prepare_threshold=none` turns off psycopg's server-side prepared statements, which pgbouncer before 1.21
    cannot keep for its client in transaction pooling (docs/SCALING.md); a number sets after how many runs."""
    raw = url.query.get("prepare_threshold")
    if raw is None:
        return url, {}
    if not isinstance(raw, str) or not (raw.lower() == "none" or (raw.isascii() and raw.isdigit())):
        raise ConfigError("RELAY_DATABASE_URL: prepare_threshold must be none or a whole number")
    return url.difference_update_query(["prepare_threshold"]), {
        "prepare_threshold": None if raw.lower() == "none" else int(raw)}


def private_file(path: Path) -> None:
    """The SQLite file (and its -wal/-shm, which SQLite creates with the file's mode) readable by us only:
    it holds password hashes, the audit log and delivery logs."""
    if not path.parent.exists():
        private_dir(path.parent)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_uid == os.getuid():
            file.chmod(0o600)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # let the "begin" listener issue BEGIN itself
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn) -> None:
    # Writers take the write lock at BEGIN so that they queue instead of failing; readers that
    # say so (read_connection) need no lock at all in WAL mode, so badges never wait behind intake.
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    if read_only:
        conn.exec_driver_sql("BEGIN DEFERRED")
    else:
        begin_immediate(conn.connection.dbapi_connection)


def begin_immediate(dbapi_conn, timeout: float = 30.0) -> None:
    """BEGIN IMMEDIATE, retried every fraction of a millisecond while another writer holds the lock.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries, so under concurrent
    intake most waiters slept long after the lock was free: the write lock sat idle and throughput
    collapsed. A transaction here holds the lock for about a millisecond, so short polls hand it on at once."""
    dbapi_conn.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + timeout
        pause = 0.0002
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 1.5, 0.002)
    finally:
        dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def read_connection(engine: Engine) -> Connection:
    """A connection for reads only: on SQLite its transactions take no write lock."""
    return engine.connect().execution_options(**{READ_ONLY: True})


def make_sessionmaker(engine: Engine, info: dict | None = None) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, info=info)


def upgrade(settings: Settings, engine: Engine | None = None) -> None:
    """Apply every pending migration."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = engine or make_engine(settings)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
