"""Who may do what: API tokens, web UI users, and the audit log that records it."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from relay.models import Token, User, utcnow
from relay.ops.cli.common import Fail, migrated_runtime, print_rows, record, when
from relay.security import audit as log
from relay.security import users as people
from relay.security.tokens import create_token, revoke_token


def issue_token(name: str, role: str, expires_at: datetime | None = None) -> str:
    """Create a token and audit it; returns its value, which is shown once and stored only as a hash."""
    with migrated_runtime().sessions.begin() as session:
        token, value = create_token(session, name, role, expires_at)
        session.flush()
        record(session, "token.created", id=token.id, name=token.name, role=role,
               expiresAt=expires_at.isoformat() if expires_at else None)
    return value


@click.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(["admin", "write", "read", "intake"]))
@click.option("--expires", type=click.DateTime(), help="Expiry time (UTC).")
def tokens_create(name: str, role: str, expires: datetime | None) -> None:
    """Create a token and print it once; only its hash is stored."""
    try:
        value = issue_token(name, role, expires.replace(tzinfo=UTC) if expires else None)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    click.echo(value)


@tokens.command("list")
def tokens_list() -> None:
    """List tokens: id, name, role, created, expires, last used, revoked; never their values."""
    print_rows(Token.id, {"ID": lambda t: str(t.id), "NAME": lambda t: t.name, "ROLE": lambda t: t.role,
                          "CREATED": lambda t: when(t.created_at), "EXPIRES": lambda t: when(t.expires_at),
                          "LAST USED": lambda t: when(t.last_used_at), "REVOKED": lambda t: when(t.revoked_at)})


@tokens.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by its id (see `tokens list`); it stops working at once."""
    runtime = migrated_runtime()
    with runtime.sessions.begin() as session:
        token = session.get(Token, token_id) if 0 < token_id < 2**31 else None
        if token is None:
            raise Fail(f"no token with id {token_id}")
        revoke_token(session, token)
        record(session, "token.revoked", id=token.id, name=token.name, role=token.role)
    click.echo(f"revoked token {token_id} ({token.name})")


@click.group()
def users() -> None:
    """Users of the web UI."""


@users.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["admin", "write", "read"]))
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin instead of prompting.")
@click.option("--break-glass", is_flag=True, help="May sign in with the password even when RELAY_SSO_ONLY is on.")
def users_create(email: str, role: str, password_stdin: bool, break_glass: bool) -> None:
    """Create a user; the password is asked twice (never an argument, so it stays out of shell history)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    runtime = migrated_runtime()
    try:
        with runtime.sessions.begin() as session:
            user = people.create_user(session, email, role, password, break_glass=break_glass)
            record(session, "user.created", email=user.email, role=user.role, breakGlass=break_glass)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    click.echo(f"created {role} {'break-glass ' if break_glass else ''}user {user.email}")


@users.command("disable")
@click.argument("email")
def users_disable(email: str) -> None:
    """Stop a user signing in and end their sessions (the row stays for the audit log)."""
    runtime = migrated_runtime()
    with runtime.sessions.begin() as session:
        user = people.find_user(session, email)
        if user is None:
            raise Fail(f"no user {email[:254]}")
        user.disabled_at = user.disabled_at or utcnow()
        user.session_epoch += 1
        record(session, "user.disabled", email=user.email)
    click.echo(f"disabled {user.email}")


@users.command("list")
def users_list() -> None:
    """List users: e-mail, role, created, last sign-in."""
    print_rows(User.email, {"EMAIL": lambda u: u.email, "ROLE": lambda u: u.role,
                            "CREATED": lambda u: when(u.created_at), "LAST SIGN-IN": lambda u: when(u.last_login_at),
                            "DISABLED": lambda u: when(u.disabled_at),
                            "FROM": lambda u: u.sso_provider or ("password, break-glass" if u.break_glass
                                                                 else "password")})


@click.group()
def audit() -> None:
    """The audit log."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the hash chain; names the first broken entry and exits 1 if there is one."""
    runtime = migrated_runtime()
    with runtime.sessions() as session:
        verdict = log.verify(session)
    if not verdict.ok:
        where = (f"entry {verdict.broken.seq} ({verdict.broken.uuid}, {verdict.broken.type}, "
                 f"{verdict.broken.timestamp.isoformat()})" if verdict.broken else "the end of the chain")
        raise Fail(f"audit log broken at {where}: {verdict.reason}")
    click.echo(f"audit log intact: {verdict.entries} entries, head {verdict.head}")
