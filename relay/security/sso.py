"""Single sign-on users: the role an identity provider's groups map to, and the user a sign-in creates or updates."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.config import Settings
from relay.models import User, utcnow
from relay.security import users
from relay.security.auditing import record

RANK = {"read": 1, "write": 2, "admin": 3}
# Never a valid argon2 hash: check_password is False for every password, so an SSO user has none.
NO_PASSWORD = "!sso"


class SsoRefused(Exception):
    """A sign-in through an identity provider that does not let the person in; the message is safe to show."""


@dataclass(frozen=True)
class Identity:
    """Who the identity provider vouched for: its name, its stable subject, a verified e-mail (or None), groups."""

    provider: str
    subject: str
    email: str | None
    groups: tuple[str, ...] = ()
    # What else identifies them to a person reading the audit log (the OIDC issuer and sub, the GitHub login).
    details: dict[str, str] = field(default_factory=dict)
    # A readable name at the provider (a GitHub login) for a user without a verified e-mail.
    handle: str | None = None

    @property
    def name(self) -> str:
        """The user's name in the relay: the verified e-mail, else provider:handle (or provider:subject)."""
        return self.email or f"{self.provider}:{self.handle or self.subject}"[:254]


def role_for(groups: tuple[str, ...] | list[str], settings: Settings) -> str | None:
    """The highest role any of the groups maps to; the default role without one; None: no access."""
    have = {g.lower() for g in groups}
    roles = [role for group, role in settings.sso_role_map if group.lower() in have]
    if roles:
        return max(roles, key=RANK.__getitem__)
    return settings.sso_default_role


def admit(session: Session, identity: Identity, settings: Settings) -> User:
    """The user behind `identity`, created at the first sign-in, with the role their groups give today; audited
    either way. Raises SsoRefused (after committing the refusal's audit entry) when they may not sign in."""
    role = role_for(identity.groups, settings)
    user = session.scalar(select(User).where(User.sso_provider == identity.provider,
                                             User.sso_subject == identity.subject))
    if user is None and identity.email:
        # A verified e-mail joins the identity to a user made by hand before SSO; an unverified one never does.
        user = users.find_user(session, identity.email)
        if user is not None and user.sso_provider is not None:
            _refuse(session, identity, "this e-mail already belongs to a user from another identity provider")
        if user is not None and user.break_glass:  # the way in when the IdP is down or not to be trusted
            _refuse(session, identity, "this e-mail belongs to a break-glass user, who signs in with a password only")
    if role is None:
        if user is not None and user.sso_provider is not None:
            user.session_epoch += 1  # whatever sessions they still have end now too
        _refuse(session, identity, "none of your groups gives access to this relay; ask an administrator")
    if user is not None and user.disabled_at is not None:
        _refuse(session, identity, "this user is disabled")
    if user is None:
        user = User(email=identity.name, role=role, password_hash=NO_PASSWORD, session_epoch=0)
        session.add(user)
        record(session, "user.created", email=user.email, role=role, provider=identity.provider,
               subject=identity.subject)
    elif user.role != role:
        record(session, "user.updated", email=user.email, role=role, previousRole=user.role,
               provider=identity.provider)
        users.change_role(user, role)
    user.sso_provider, user.sso_subject = identity.provider, identity.subject
    if identity.email and user.email != identity.email and users.find_user(session, identity.email) is None:
        user.email = identity.email  # the IdP's verified e-mail changed
    user.last_login_at = utcnow()
    session.flush()
    return user


def _refuse(session: Session, identity: Identity, reason: str) -> None:
    record(session, "user.login_failed", email=identity.name, reason=reason, provider=identity.provider,
           subject=identity.subject, **identity.details)
    session.commit()
    raise SsoRefused(reason)
