"""Facing the Pact Broker and READMEs: the broker webhook, presets, badge URLs, declarative apply."""

from __future__ import annotations

import json
import os

import click
import requests

from relay.broker.webhook import broker_webhook_json
from relay.intake import declarative
from relay.intake.presets import list_presets
from relay.ops.cli.access import issue_token
from relay.ops.cli.common import Fail, load_settings, migrated_runtime, record
from relay.pairs import badgeurls
from relay.pairs.state import PairKey
from relay.pairs.store import storable


@click.group()
def badges() -> None:
    """README verification badges."""


@badges.command("url")
@click.option("--consumer", required=True)
@click.option("--provider", required=True)
@click.option("--tag", help="Badge of the latest pact with this consumer tag or branch.")
@click.option("--provider-tag", help="With --tag: the matrix badge for this provider tag or branch.")
@click.option("--untagged", is_flag=True, help="Badge of the latest pact without any consumer tag.")
@click.option("--label", type=click.Choice(["consumer", "provider"]), help="Show only this side's name.")
@click.option("--initials", is_flag=True, help="Abbreviate names to their initials.")
def badges_url(consumer: str, provider: str, tag: str | None, provider_tag: str | None, untagged: bool,
               label: str | None, initials: bool) -> None:
    """Print a badge's URL under RELAY_PUBLIC_URL, signed when RELAY_PRIVATE_BADGES is on."""
    if provider_tag and not tag:
        raise Fail("--provider-tag needs --tag (a matrix badge names both tags)")
    if untagged and tag:
        raise Fail("--untagged and --tag exclude each other")
    for option, value in (("--consumer", consumer), ("--provider", provider), ("--tag", tag),
                          ("--provider-tag", provider_tag)):
        if value is not None and not value.strip():
            raise Fail(f"{option} must not be empty")
    if not storable(PairKey(consumer, provider, tag or "", provider_tag or "")):
        raise Fail("names and tags must be at most 255 characters (2000 bytes together) without NUL")
    kind = "matrix" if provider_tag else "tag" if tag else "untagged" if untagged else "latest"
    ref = badgeurls.BadgeRef(kind, consumer, provider, tag or "", provider_tag or "")
    settings = load_settings()
    if settings.private_badges:
        settings = settings.with_generated_keys()
    key = settings.secret_key if settings.private_badges else None
    click.echo(badgeurls.url(settings.public_url, ref, key, label, initials))


@click.command()
@click.option("-f", "--file", "path", required=True, type=click.File("r"), help="The declaration (YAML).")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--prune", is_flag=True, help="Also destroy webhooks and secrets the file does not declare.")
def apply(path, dry_run: bool, prune: bool) -> None:
    """Make the relay's webhooks, secrets and tokens match a file; prints the plan first."""
    runtime = migrated_runtime()
    try:
        doc = declarative.load(path.read())
        with runtime.sessions() as session:
            plan = declarative.plan(session, runtime.settings, runtime.vault, doc, os.environ, prune)
            for change in plan.changes:
                click.echo(change.line())
            click.echo(plan.summary())
            if dry_run or not plan.changes:
                return
            for change in plan.changes:
                change.apply(session)
                verb = {"add": "created", "change": "updated", "destroy": "deleted"}[change.action]
                record(session, f"{change.kind}.{verb}", name=change.name, source=path.name)
            session.commit()
    except declarative.DeclarationError as exc:
        raise Fail("cannot apply " + path.name + ":\n  " + "\n  ".join(exc.problems)) from None
    for name, value in plan.created_tokens.items():
        click.echo(f"token {name}: {value}  (shown once)")
    click.echo(f"Applied: {plan.count('add')} added, {plan.count('change')} changed, "
               f"{plan.count('destroy')} destroyed.")


@click.command("broker-webhook")
@click.option("--relay-url", required=True, help="The relay's public base URL, as the broker reaches it.")
@click.option("--token", envvar="RELAY_INTAKE_TOKEN", help="An intake token; a new one is created when omitted.")
@click.option("--broker-url", help="Create the webhook in this Pact Broker instead of printing it.")
@click.option("--broker-token", envvar="PACT_BROKER_TOKEN", help="Bearer token for the broker.")
def broker_webhook(relay_url: str, token: str | None, broker_url: str | None, broker_token: str | None) -> None:
    """Print (or create) the one Pact Broker webhook that sends every event to this relay."""
    if not relay_url.startswith(("http://", "https://")):
        raise Fail("--relay-url must start with http:// or https://")
    if not token:
        token = issue_token("pact-broker", "intake")
    doc = broker_webhook_json(relay_url, token)
    if not broker_url:
        click.echo(json.dumps(doc, indent=2))
        return

    headers = {"Content-Type": "application/json", "Accept": "application/hal+json"}
    if broker_token:
        headers["Authorization"] = f"Bearer {broker_token}"
    try:
        resp = requests.post(broker_url.rstrip("/") + "/webhooks", json=doc, headers=headers, timeout=15)
    except requests.RequestException as exc:
        raise Fail(f"cannot reach the broker: {type(exc).__name__}") from None
    if resp.status_code >= 300:
        raise Fail(f"the broker answered HTTP {resp.status_code}: {resp.text[:300]}")
    click.echo(f"created {resp.headers.get('Location') or resp.json().get('_links', {}).get('self', {}).get('href')}")


@click.group()
def webhooks() -> None:
    """Webhook helpers."""


@webhooks.command("presets")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def webhooks_presets(as_json: bool) -> None:
    """List the ready-made `request` webhooks; create one with POST /webhooks {"preset": NAME, ...params}."""
    items = list_presets()
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        params = ", ".join(f"{k}{'' if v['required'] and v['default'] is None else '?'}"
                           for k, v in item["params"].items())
        click.echo(f"{item['name']:<28} {item['title']}\n{'':<28} events: {', '.join(item['events'])}; "
                   f"params: {params}")
