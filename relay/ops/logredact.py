"""Masks secrets in every log record of the process, whichever logger or handler it goes through."""

from __future__ import annotations

import logging
import traceback

from relay.redact import known_secrets

_INSTALLED = "_relay_redacting"


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Format the message (and traceback) now and mask known secret values and credential shapes in it."""
    known = known_secrets()
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: keep what can be shown, never fail the caller
        message = f"{record.msg!r} {record.args!r}"
    record.msg, record.args = known.text(message), None
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = known.text("".join(traceback.format_exception(*record.exc_info)).rstrip())
        record.exc_info = None
    if record.stack_info:
        record.stack_info = known.text(record.stack_info)
    return record


def install() -> None:
    """Wrap the log record factory once per process, so handlers added later (pytest's, gunicorn's) see
    only masked records."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, _INSTALLED, False):
        return

    def redacting_factory(*args, **kwargs):
        return redact_record(factory(*args, **kwargs))

    setattr(redacting_factory, _INSTALLED, True)
    logging.setLogRecordFactory(redacting_factory)
