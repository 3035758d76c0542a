"""The `pact-relay` command line."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime

import click

from relay.config import ConfigError, Settings
from relay.templating import VARIABLES


class Fail(click.ClickException):
    """One readable line and exit status 1."""


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise Fail(str(exc)) from None


def _runtime():
    from relay.runtime import Runtime

    try:
        return Runtime(_settings())
    except ConfigError as exc:
        raise Fail(str(exc)) from None


def _logging(settings: Settings) -> None:
    from relay import logredact, logs

    logredact.install()
    logs.configure(settings)


@click.group()
@click.version_option(package_name="pact-relay")
def main() -> None:
    """Pact Relay: Pact Broker webhook events in, GitHub, Slack, CI and badges out."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="RQ worker processes")
@click.option("--web-workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int, web_workers: int, threads: int) -> None:
    """Run everything: migrations, web, workers, sweeper, and Redis when RELAY_REDIS_URL is unset."""
    from relay import serve as supervisor

    settings = _settings()
    _logging(settings)
    try:
        sys.exit(supervisor.run(settings, host, port, workers, web_workers, threads))
    except (ConfigError, RuntimeError) as exc:
        raise Fail(str(exc)) from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--web-workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
def web(host: str, port: int, web_workers: int, threads: int) -> None:
    """Run the web process only (gunicorn)."""
    from relay.serve import gunicorn_argv

    argv = gunicorn_argv(host, port, web_workers, threads)
    os.execv(argv[0], argv)


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    """Run one RQ worker with the scheduler and the sweeper."""
    import redis

    from workers import worker as rq_worker

    runtime = _runtime()
    _logging(runtime.settings)
    if not runtime.settings.redis_url and not (runtime.settings.data_dir / "redis.sock").exists():
        raise Fail("RELAY_REDIS_URL is not set and no embedded Redis is running in "
                   f"{runtime.settings.data_dir}: set RELAY_REDIS_URL, or use `pact-relay serve`")
    try:
        rq_worker.run(runtime, burst=burst)
    except redis.exceptions.ConnectionError as exc:
        raise Fail(f"cannot reach Redis: {exc}") from None


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    from relay import db as database

    database.upgrade(_settings())
    click.echo("database is up to date")


@main.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(["admin", "write", "read", "intake"]))
@click.option("--expires", type=click.DateTime(), help="Expiry time (UTC).")
def tokens_create(name: str, role: str, expires: datetime | None) -> None:
    """Create a token and print it once; only its hash is stored."""
    from relay.auth import create_token

    runtime = _migrated_runtime()
    expires_at = expires.replace(tzinfo=UTC) if expires else None
    try:
        with runtime.sessions.begin() as session:
            token, value = create_token(session, name, role, expires_at)
            session.flush()
            _audit(session, "token.created", id=token.id, name=token.name, role=role,
                   expiresAt=expires_at.isoformat() if expires_at else None)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    click.echo(value)


@tokens.command("list")
def tokens_list() -> None:
    """List tokens: id, name, role, created, expires, last used, revoked; never their values."""
    from sqlalchemy import select

    from relay.models import Token

    runtime = _migrated_runtime()
    with runtime.sessions() as session:
        rows = list(session.scalars(select(Token).order_by(Token.id)))
    click.echo(_table(["ID", "NAME", "ROLE", "CREATED", "EXPIRES", "LAST USED", "REVOKED"],
                      [[str(t.id), t.name, t.role, _when(t.created_at), _when(t.expires_at),
                        _when(t.last_used_at), _when(t.revoked_at)] for t in rows]))


@tokens.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by its id (see `tokens list`); it stops working at once."""
    from relay.auth import revoke_token
    from relay.models import Token

    runtime = _migrated_runtime()
    with runtime.sessions.begin() as session:
        token = session.get(Token, token_id) if 0 < token_id < 2**31 else None
        if token is None:
            raise Fail(f"no token with id {token_id}")
        revoke_token(session, token)
        _audit(session, "token.revoked", id=token.id, name=token.name, role=token.role)
    click.echo(f"revoked token {token_id} ({token.name})")


def _migrated_runtime():
    from relay import db as database

    runtime = _runtime()
    database.upgrade(runtime.settings, runtime.engine)
    return runtime


def _cli_actor():
    import pwd

    from relay.audit import Actor

    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        name = f"uid {os.getuid()}"
    return Actor("cli", name)


def _audit(session, type: str, **payload) -> None:
    from relay import audit

    command = click.get_current_context().command_path
    audit.append(session, type, _cli_actor(), payload, audit.Origin(method="CLI", path=command))


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows])


@main.group()
def keys() -> None:
    """Encryption keys (RELAY_ENCRYPTION_KEYS)."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new Fernet key; put it first in RELAY_ENCRYPTION_KEYS, then run `keys rotate`."""
    from relay.keys import generate

    click.echo(generate())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every secret, sealed webhook field and signing secret under the first key; all or nothing."""
    from relay import keys as keyring

    settings = _settings()
    if not settings.encryption_keys and not (settings.data_dir / "encryption.key").exists():
        raise Fail("RELAY_ENCRYPTION_KEYS is not set: set it to the new key followed by the old ones, "
                   "comma-separated")
    runtime = _migrated_runtime()
    try:
        with runtime.sessions.begin() as session:
            done = keyring.rotate(session, runtime.vault)
            _audit(session, "keys.rotated", secrets=done.secrets, webhooks=done.webhooks,
                   sealedFields=done.sealed_fields, signingSecrets=done.signing_secrets,
                   keys=len(runtime.settings.encryption_keys))
    except keyring.RotationError as exc:
        raise Fail(f"{exc}; nothing was changed") from None
    click.echo(done.summary())


@main.group()
def secrets() -> None:
    """Secrets for ${user.NAME} templates; values are write-only."""


@secrets.command("set")
@click.argument("name")
@click.option("--description", help="What the secret is for.")
def secrets_set(name: str, description: str | None) -> None:
    """Store a secret read from stdin (typed without echo on a terminal, or piped)."""
    from relay import secrets as vaulted
    from relay.errors import PayloadError

    if sys.stdin.isatty():
        value = click.prompt(f"value of {name}", hide_input=True, prompt_suffix=": ", err=True)
    else:
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
    runtime = _migrated_runtime()
    try:
        with runtime.sessions.begin() as session:
            secret, created = vaulted.save(session, runtime.vault, name, value, description)
            _audit(session, "secret.created" if created else "secret.updated", name=secret.name,
                   description=secret.description)
    except PayloadError as exc:
        raise Fail("; ".join(f"{k}: {', '.join(v)}" for k, v in exc.errors.items())) from None
    click.echo(f"{'created' if created else 'updated'} secret {name}: use it as ${{user.{name}}}")


@secrets.command("list")
def secrets_list() -> None:
    """List secret names and descriptions (never values)."""
    from sqlalchemy import select

    from relay.models import Secret

    runtime = _migrated_runtime()
    with runtime.sessions() as session:
        rows = list(session.scalars(select(Secret).order_by(Secret.name)))
    click.echo(_table(["NAME", "UPDATED", "DESCRIPTION"],
                      [[s.name, _when(s.updated_at), s.description.replace("\n", " ")[:80]] for s in rows]))


@secrets.command("delete")
@click.argument("name")
def secrets_delete(name: str) -> None:
    """Delete a secret."""
    from relay.models import Secret

    runtime = _migrated_runtime()
    with runtime.sessions.begin() as session:
        secret = session.get(Secret, name)
        if secret is None:
            raise Fail(f"no secret {name[:100]!r}")
        session.delete(secret)
        _audit(session, "secret.deleted", name=name)
    click.echo(f"deleted secret {name}")


@main.group()
def users() -> None:
    """Users of the web UI."""


@users.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["admin", "write", "read"]))
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin instead of prompting.")
def users_create(email: str, role: str, password_stdin: bool) -> None:
    """Create a user; the password is asked twice (never an argument, so it stays out of shell history)."""
    from relay import users as people

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    runtime = _migrated_runtime()
    try:
        with runtime.sessions.begin() as session:
            user = people.create_user(session, email, role, password)
            _audit(session, "user.created", email=user.email, role=user.role)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    click.echo(f"created {role} user {user.email}")


@users.command("disable")
@click.argument("email")
def users_disable(email: str) -> None:
    """Stop a user signing in and end their sessions (the row stays for the audit log)."""
    from relay import users as people
    from relay.models import utcnow

    runtime = _migrated_runtime()
    with runtime.sessions.begin() as session:
        user = people.find_user(session, email)
        if user is None:
            raise Fail(f"no user {email[:254]}")
        user.disabled_at = user.disabled_at or utcnow()
        user.session_epoch += 1
        _audit(session, "user.disabled", email=user.email)
    click.echo(f"disabled {user.email}")


@users.command("list")
def users_list() -> None:
    """List users: e-mail, role, created, last sign-in."""
    from sqlalchemy import select

    from relay.models import User

    runtime = _migrated_runtime()
    with runtime.sessions() as session:
        rows = list(session.scalars(select(User).order_by(User.email)))
    click.echo(_table(["EMAIL", "ROLE", "CREATED", "LAST SIGN-IN", "DISABLED"],
                      [[u.email, u.role, _when(u.created_at), _when(u.last_login_at), _when(u.disabled_at)]
                       for u in rows]))


@main.group()
def audit() -> None:
    """The audit log."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the hash chain; names the first broken entry and exits 1 if there is one."""
    from relay import audit as log

    runtime = _migrated_runtime()
    with runtime.sessions() as session:
        verdict = log.verify(session)
    if not verdict.ok:
        where = (f"entry {verdict.broken.seq} ({verdict.broken.uuid}, {verdict.broken.type}, "
                 f"{verdict.broken.timestamp.isoformat()})" if verdict.broken else "the end of the chain")
        raise Fail(f"audit log broken at {where}: {verdict.reason}")
    click.echo(f"audit log intact: {verdict.entries} entries, head {verdict.head}")


@main.group()
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
    from relay import badgeurls
    from relay.pairstate import PairKey
    from relay.pairstore import storable

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
    settings = _settings()
    if settings.private_badges:
        try:
            settings = settings.with_generated_keys()
        except ConfigError as exc:
            raise Fail(str(exc)) from None
    key = settings.secret_key if settings.private_badges else None
    click.echo(badgeurls.url(settings.public_url, ref, key, label, initials))


@main.command()
@click.option("-f", "--file", "path", required=True, type=click.File("r"), help="The declaration (YAML).")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--prune", is_flag=True, help="Also destroy webhooks and secrets the file does not declare.")
def apply(path, dry_run: bool, prune: bool) -> None:
    """Make the relay's webhooks, secrets and tokens match a file; prints the plan first."""
    from relay import declarative

    runtime = _migrated_runtime()
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
                _audit(session, f"{change.kind}.{verb}", name=change.name, source=path.name)
            session.commit()
    except declarative.DeclarationError as exc:
        raise Fail("cannot apply " + path.name + ":\n  " + "\n  ".join(exc.problems)) from None
    for name, value in plan.created_tokens.items():
        click.echo(f"token {name}: {value}  (shown once)")
    click.echo(f"Applied: {plan.count('add')} added, {plan.count('change')} changed, "
               f"{plan.count('destroy')} destroyed.")


def broker_webhook_json(relay_url: str, token: str) -> dict:
    from relay.events import EVENT_NAMES

    return {
        "description": "Pact Relay: every event",
        "events": [{"name": name} for name in EVENT_NAMES],
        "request": {
            "method": "POST",
            "url": relay_url.rstrip("/") + "/events",
            "headers": {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            "body": {name: f"${{pactbroker.{name}}}" for name in VARIABLES},
        },
    }


@main.command("broker-webhook")
@click.option("--relay-url", required=True, help="The relay's public base URL, as the broker reaches it.")
@click.option("--token", envvar="RELAY_INTAKE_TOKEN", help="An intake token; a new one is created when omitted.")
@click.option("--broker-url", help="Create the webhook in this Pact Broker instead of printing it.")
@click.option("--broker-token", envvar="PACT_BROKER_TOKEN", help="Bearer token for the broker.")
def broker_webhook(relay_url: str, token: str | None, broker_url: str | None, broker_token: str | None) -> None:
    """Print (or create) the one Pact Broker webhook that sends every event to this relay."""
    if not relay_url.startswith(("http://", "https://")):
        raise Fail("--relay-url must start with http:// or https://")
    if not token:
        from relay import db as database
        from relay.auth import create_token

        runtime = _runtime()
        database.upgrade(runtime.settings, runtime.engine)
        with runtime.sessions.begin() as session:
            _, token = create_token(session, "pact-broker", "intake")
    doc = broker_webhook_json(relay_url, token)
    if not broker_url:
        click.echo(json.dumps(doc, indent=2))
        return
    import requests

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


@main.group()
def webhooks() -> None:
    """Webhook helpers."""


@webhooks.command("presets")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def webhooks_presets(as_json: bool) -> None:
    """List the ready-made `request` webhooks; create one with POST /webhooks {"preset": NAME, ...params}."""
    from integrations.presets import list_presets

    items = list_presets()
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        params = ", ".join(f"{k}{'' if v['required'] and v['default'] is None else '?'}"
                           for k, v in item["params"].items())
        click.echo(f"{item['name']:<28} {item['title']}\n{'':<28} events: {', '.join(item['events'])}; "
                   f"params: {params}")


if __name__ == "__main__":
    main()
