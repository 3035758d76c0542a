"""What every `pact-relay` command shares: one-line failures, settings, the runtime, audit entries, tables."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
from sqlalchemy import select

from relay import db as database
from relay.config import Settings
from relay.ops import logredact, logs
from relay.redact import KnownSecrets
from relay.runtime import Runtime
from relay.security import audit as log
from relay.security.audit import Actor


class Fail(click.ClickException):
    """One readable line and exit status 1."""


def load_settings() -> Settings:
    """The settings; a bad one raises ConfigError, which the command group turns into one line."""
    return Settings.from_env()


def load_runtime():
    return Runtime(load_settings())


def migrated_runtime():
    made = load_runtime()
    database.upgrade(made.settings, made.engine)
    return made


def configure_logging(settings: Settings, known: KnownSecrets | None = None) -> None:
    """JSON logs with secrets masked: the values `known` holds (the runtime's), and credential shapes always."""
    logredact.install(known if known is not None else KnownSecrets())
    logs.configure(settings)


def _cli_actor():
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        name = f"uid {os.getuid()}"
    return Actor("cli", name)


def record(session, type: str, **payload) -> None:
    """Append an audit entry for the running command, with the local user as actor."""
    command = click.get_current_context().command_path
    log.append(session, type, _cli_actor(), payload, log.Origin(method="CLI", path=command))


def print_rows(order_by, columns: dict[str, Callable[[Any], str]]) -> None:
    """Print every row of the model `order_by` belongs to, in that order, as a table of these columns."""
    with migrated_runtime().sessions() as session:
        rows = list(session.scalars(select(order_by.class_).order_by(order_by)))
        click.echo(table(list(columns), [[cell(row) for cell in columns.values()] for row in rows]))


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows])
