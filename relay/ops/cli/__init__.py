"""The `pact-relay` command line: one group, its subcommands in the modules beside this one."""

from __future__ import annotations

import click
from redis.exceptions import ConnectionError as RedisDown
from sqlalchemy.exc import ArgumentError, OperationalError

from relay.config import ConfigError
from relay.ops.cli import access, broker, processes, vault
from relay.ops.cli.common import Fail


class Commands(click.Group):
    """Turns what a command cannot reach (database, Redis, the data directory) into one line, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise Fail(f"cannot reach the database: {reason}") from None
        except RedisDown as exc:
            raise Fail(f"cannot reach Redis: {exc}") from None
        except (ConfigError, ArgumentError) as exc:
            raise Fail(str(exc)) from None


@click.group(cls=Commands)
@click.version_option(package_name="pact-relay")
def main() -> None:
    """Pact Relay: Pact Broker webhook events in, GitHub, Slack, CI and badges out."""


for command in (processes.serve, processes.web, processes.worker, processes.db,
                access.tokens, access.users, access.audit, vault.keys, vault.secrets,
                broker.badges, broker.apply, broker.broker_webhook, broker.webhooks):
    main.add_command(command)
