"""Log lines: JSON with ids as fields, or text; credentials masked whatever logged them."""

import io
import json
import logging

import pytest

from relay.config import ConfigError, Settings
from relay.ops.logs import JsonFormatter, TextFormatter, configure


def record(msg, *args, **extra):
    rec = logging.LogRecord("workers.jobs", logging.INFO, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_json_lines_carry_ids_as_fields():
    line = JsonFormatter().format(record("delivery %s attempt %s: %s", "d-1", 2, "retrying",
                                         delivery_id="d-1", event_id="e-1", webhook="w-1", attempt=2))
    doc = json.loads(line)
    assert doc["msg"] == "delivery d-1 attempt 2: retrying" and doc["level"] == "INFO"
    assert (doc["delivery_id"], doc["event_id"], doc["webhook"], doc["attempt"]) == ("d-1", "e-1", "w-1", 2)
    assert "\n" not in line


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_credentials_are_masked_whatever_logged_them(formatter):
    token = "prt_" + "A1b2C3d4" * 5
    line = formatter.format(record("got %s and Bearer abcdefgh12345678 and whsec_%s", token, "Zm9vYmFyYmF6cXV4cXV1eA==",
                                   header=f"Authorization: Bearer {token}"))
    assert token not in line and "abcdefgh12345678" not in line and "Zm9vYmFyYmF6" not in line


def test_exceptions_stay_on_one_json_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("failed")
        rec.exc_info = sys.exc_info()
    doc = json.loads(JsonFormatter().format(rec))
    assert "ValueError: boom" in doc["exc"]


def test_a_traceback_the_redacting_factory_formatted_reaches_the_json_line():
    """log.exception() goes through relay.ops.logredact, which formats the traceback (masked) into exc_text and
    drops exc_info: the JSON line printed no traceback at all, so an unhandled error never said where."""
    from relay.ops.logredact import redact_record
    from relay.redact import KnownSecrets

    known = KnownSecrets()
    known.add("s3cret-value-of-a-webhook")
    try:
        raise RuntimeError("failed with s3cret-value-of-a-webhook")
    except RuntimeError:
        import sys

        rec = record("unhandled error")
        rec.exc_info = sys.exc_info()
    doc = json.loads(JsonFormatter().format(redact_record(rec, known)))
    assert "Traceback" in doc["exc"] and "RuntimeError: failed with" in doc["exc"]
    assert "s3cret-value-of-a-webhook" not in json.dumps(doc)


def test_the_format_is_a_setting(tmp_path):
    assert Settings.from_env({"RELAY_LOG_FORMAT": "text"}).log_format == "text"
    assert Settings.from_env({}).log_format == "auto"
    with pytest.raises(ConfigError, match="RELAY_LOG_FORMAT"):
        Settings.from_env({"RELAY_LOG_FORMAT": "xml"})


def test_configure_replaces_the_root_handlers():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        configure(Settings.from_env({"RELAY_LOG_FORMAT": "json", "RELAY_LOG_LEVEL": "WARNING"}), stream)
        logging.getLogger("relay.test").warning("hello", extra={"event_id": "e"})
        logging.getLogger("relay.test").info("hidden")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["event_id"] == "e"


def test_rate_limit_setting():
    assert (Settings.from_env({}).rate_limit, Settings.from_env({}).rate_window) == (6000, 60.0)
    s = Settings.from_env({"RELAY_RATE_LIMIT": "100/10"})
    assert (s.rate_limit, s.rate_window) == (100, 10.0)
    assert Settings.from_env({"RELAY_RATE_LIMIT": "0"}).rate_limit == 0
    with pytest.raises(ConfigError):
        Settings.from_env({"RELAY_RATE_LIMIT": "lots"})


def test_auto_is_text_at_a_terminal_and_json_otherwise():
    import os

    from relay.ops.logs import TextFormatter, formatter

    auto = Settings.from_env({})
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert isinstance(formatter(auto, terminal), TextFormatter)
            assert isinstance(formatter(Settings.from_env({"RELAY_LOG_FORMAT": "json"}), terminal), JsonFormatter)
    finally:
        os.close(leader)
        os.close(follower)
    assert isinstance(formatter(auto, io.StringIO()), JsonFormatter)
    assert isinstance(formatter(Settings.from_env({"RELAY_LOG_FORMAT": "text"}), io.StringIO()), TextFormatter)


@pytest.mark.parametrize("level,chatty", [("INFO", False), ("DEBUG", True)])
def test_migrations_say_nothing_below_debug(tmp_path, level, chatty):
    from relay.db import upgrade

    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("alembic").level
    stream = io.StringIO()
    settings = Settings.from_env({"RELAY_DATA_DIR": str(tmp_path), "RELAY_LOG_LEVEL": level})
    try:
        configure(settings, stream)
        upgrade(settings)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("alembic").setLevel(saved[2])
    assert ("alembic" in stream.getvalue()) is chatty, stream.getvalue()[:500]
