"""Log output: one JSON object per line (or plain text), ids as fields, credential shapes masked."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from gunicorn import glogging

from relay.config import Settings
from relay.redact import HEADER_MASK

# Attributes every LogRecord has; anything else on a record came from `extra=` and becomes a field.
STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
# Values a relay log line must never show even if some library logs them: API tokens, signing secrets,
# bearer credentials. Secret *values* are redacted where they are known (relay.redact), before logging.
CREDENTIAL = re.compile(r"prt_[A-Za-z0-9_-]{16,}|whsec_[A-Za-z0-9+/=]{16,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}")


def scrub(text: str) -> str:
    return CREDENTIAL.sub(HEADER_MASK, text)


def fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "pid": record.process,
            "msg": scrub(record.getMessage()),
        }
        doc.update(fields(record))
        if record.exc_info:
            doc["exc"] = scrub(self.formatException(record.exc_info))
        elif record.exc_text:  # the redacting record factory (relay.ops.logredact) formatted it already
            doc["exc"] = scrub(record.exc_text)
        return scrub(json.dumps(doc, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields(record).items())
        return scrub(f"{line} {extra}" if extra else line)


def access_fields(atoms: dict[str, Any]) -> dict[str, Any]:
    """The request's fields from gunicorn's access-log atoms."""
    status = atoms.get("s")
    return {"method": atoms.get("m"), "path": atoms.get("U"),
            "status": int(status) if str(status).isdigit() else status,
            "duration_ms": round(float(atoms.get("L") or 0) * 1000, 2), "remote": atoms.get("h"),
            "bytes": atoms.get("B"), "user_agent": atoms.get("a")}


def formatter(settings: Settings, stream=None) -> logging.Formatter:
    """JSON or text as RELAY_LOG_FORMAT says; `auto`: text for a person at a terminal, JSON for a collector."""
    fmt = settings.log_format
    if fmt == "auto":
        target = stream or sys.stderr
        fmt = "text" if getattr(target, "isatty", lambda: False)() else "json"
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure(settings: Settings, stream=None) -> None:
    """Send every logger's records to stderr in the configured format, at the configured level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(settings, handler.stream))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # Alembic narrates every migration step and plugin at INFO; that is detail, shown only at DEBUG.
    logging.getLogger("alembic").setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)


class GunicornLogger(glogging.Logger):
    """gunicorn's error and access logs in the relay's format (`--logger-class relay.ops.logs.GunicornLogger`)."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        settings = Settings.from_env()
        self.error_log.setLevel(settings.log_level)
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(formatter(settings, getattr(handler, "stream", None)))

    def access(self, resp, req, environ, request_time) -> None:
        # The usual line, plus its atoms as fields (passed as `extra`: the redacting record factory of
        # relay.ops.logredact formats and drops a record's args).
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        try:
            self.access_log.info(self.cfg.access_log_format % self.atoms_wrapper_class(atoms),
                                 extra=access_fields(atoms))
        except Exception:
            self.error("access log failed")
