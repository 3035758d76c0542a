"""The database engine: driver options carried in RELAY_DATABASE_URL."""

import pytest
from sqlalchemy import text

from relay.config import ConfigError, Settings
from relay.db import make_engine
from tests.conftest import TEST_KEYS


def engine_for(url: str):
    return make_engine(Settings.from_env({}, database_url=url, secret_key="x", encryption_keys=TEST_KEYS))


@pytest.mark.parametrize(("option", "threshold"), [("none", None), ("NONE", None), ("3", 3)])
def test_prepare_threshold_in_the_url_reaches_psycopg(pg_database, option, threshold):
    """pgbouncer before 1.21 in transaction pooling needs `?prepare_threshold=none` (docs/SCALING.md)."""
    engine = engine_for(f"{pg_database}?prepare_threshold={option}")
    try:
        with engine.connect() as conn:
            for _ in range(8):  # past psycopg's default threshold of 5
                assert conn.execute(text("SELECT 1")).scalar() == 1
            assert conn.connection.dbapi_connection.prepare_threshold == threshold
    finally:
        engine.dispose()


@pytest.mark.parametrize("option", ["-1", "soon"])
def test_a_bad_prepare_threshold_names_the_setting(pg_database, option):
    with pytest.raises(ConfigError, match="^RELAY_DATABASE_URL: prepare_threshold must be none or a whole number"):
        engine_for(f"{pg_database}?prepare_threshold={option}")
