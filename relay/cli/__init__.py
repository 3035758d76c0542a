"""The `pact-relay` command line: one group, its subcommands in the modules beside this one."""

from __future__ import annotations

import click

from relay.cli import access, broker, processes, vault


@click.group()
@click.version_option(package_name="pact-relay")
def main() -> None:
    """Pact Relay: Pact Broker webhook events in, GitHub, Slack, CI and badges out."""


for command in (processes.serve, processes.web, processes.worker, processes.db,
                access.tokens, access.users, access.audit, vault.keys, vault.secrets,
                broker.badges, broker.apply, broker.broker_webhook, broker.webhooks):
    main.add_command(command)
