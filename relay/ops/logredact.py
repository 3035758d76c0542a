"""Masks secrets in every log record of the process, whichever logger or handler it goes through."""

from __future__ import annotations

import logging
import traceback

from relay.redact import KnownSecrets

_INSTALLED = "_relay_redacting"


def redact_record(record: logging.LogRecord, known: KnownSecrets) -> logging.LogRecord:
    """Format the message (and traceback) now and mask known secret values and credential shapes in it."""
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


def install(known: KnownSecrets) -> None:
    """Wrap the log record factory once per process, so handlers added later (pytest's, gunicorn's) see
    only masked records; it masks the values of `known`, the runtime's set (logging itself is per process:
    installing again only points the one wrapper at the newer runtime's set)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, _INSTALLED, False):
        factory.known = known
        return

    def redacting_factory(*args, **kwargs):
        return redact_record(factory(*args, **kwargs), redacting_factory.known)

    redacting_factory.known = known
    setattr(redacting_factory, _INSTALLED, True)
    logging.setLogRecordFactory(redacting_factory)
