"""Secrets for ${user.NAME} templates and the encryption keys that seal them."""

from __future__ import annotations

import sys

import click

from relay.errors import PayloadError
from relay.models import Secret
from relay.ops.cli.common import Fail, load_settings, migrated_runtime, print_rows, record, when
from relay.security import keys as keyring
from relay.security import secrets as vaulted
from relay.security.keys import generate


@click.group()
def keys() -> None:
    """Encryption keys (RELAY_ENCRYPTION_KEYS)."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new Fernet key; put it first in RELAY_ENCRYPTION_KEYS, then run `keys rotate`."""
    click.echo(generate())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every secret, sealed webhook field and signing secret under the first key; all or nothing."""
    settings = load_settings()
    if not settings.encryption_keys and not (settings.data_dir / "encryption.key").exists():
        raise Fail("RELAY_ENCRYPTION_KEYS is not set: set it to the new key followed by the old ones, "
                   "comma-separated")
    runtime = migrated_runtime()
    try:
        with runtime.sessions.begin() as session:
            done = keyring.rotate(session, runtime.vault)
            record(session, "keys.rotated", secrets=done.secrets, webhooks=done.webhooks,
                   sealedFields=done.sealed_fields, signingSecrets=done.signing_secrets,
                   keys=len(runtime.settings.encryption_keys))
    except keyring.RotationError as exc:
        raise Fail(f"{exc}; nothing was changed") from None
    click.echo(done.summary())


@click.group()
def secrets() -> None:
    """Secrets for ${user.NAME} templates; values are write-only."""


@secrets.command("set")
@click.argument("name")
@click.option("--description", help="What the secret is for.")
def secrets_set(name: str, description: str | None) -> None:
    """Store a secret read from stdin (typed without echo on a terminal, or piped)."""
    if sys.stdin.isatty():
        value = click.prompt(f"value of {name}", hide_input=True, prompt_suffix=": ", err=True)
    else:
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
    runtime = migrated_runtime()
    try:
        with runtime.sessions.begin() as session:
            secret, created = vaulted.save(session, runtime.vault, name, value, description)
            record(session, "secret.created" if created else "secret.updated", name=secret.name,
                   description=secret.description)
    except PayloadError as exc:
        raise Fail("; ".join(f"{k}: {', '.join(v)}" for k, v in exc.errors.items())) from None
    click.echo(f"{'created' if created else 'updated'} secret {name}: use it as ${{user.{name}}}")


@secrets.command("list")
def secrets_list() -> None:
    """List secret names and descriptions (never values)."""
    print_rows(Secret.name, {"NAME": lambda s: s.name, "UPDATED": lambda s: when(s.updated_at),
                             "DESCRIPTION": lambda s: s.description.replace("\n", " ")[:80]})


@secrets.command("delete")
@click.argument("name")
def secrets_delete(name: str) -> None:
    """Delete a secret."""
    runtime = migrated_runtime()
    with runtime.sessions.begin() as session:
        secret = session.get(Secret, name)
        if secret is None:
            raise Fail(f"no secret {name[:100]!r}")
        session.delete(secret)
        record(session, "secret.deleted", name=name)
    click.echo(f"deleted secret {name}")
