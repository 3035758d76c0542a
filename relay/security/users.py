"""Web UI users: e-mail, role and an argon2id password hash."""

from __future__ import annotations

import re
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.models import User

# A user signs in to the UI; `intake` is for the Pact Broker's token only.
ROLES = ("admin", "write", "read")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    # argon2id with the library's defaults (RFC 9106's second recommended profile: 64 MiB, t=3, p=4).
    return PasswordHasher()


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return hasher().hash("decoy password, never a real one")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"must be at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"must be at most {MAX_PASSWORD} characters"
    return None


def create_user(session: Session, email: str, role: str, password: str, break_glass: bool = False) -> User:
    """A new user in the session (the caller commits); ValueError with a readable message otherwise."""
    email = normalize_email(email)
    if not EMAIL.fullmatch(email) or len(email) > 254:
        raise ValueError(f"{email[:100]!r} is not an e-mail address")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    problem = password_problem(password)
    if problem:
        raise ValueError(f"password {problem}")
    if find_user(session, email) is not None:
        raise ValueError(f"a user {email} already exists")
    user = User(email=email, role=role, password_hash=hasher().hash(password), session_epoch=0,
                break_glass=break_glass)
    session.add(user)
    session.flush()
    return user


def change_role(user: User, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    user.role = role
    user.session_epoch += 1  # their open sessions carried the old role


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalize_email(email)))


def check_password(user: User | None, password: str) -> bool:
    """True when the password is right; an unknown user costs the same time as a wrong password."""
    try:
        return hasher().verify(user.password_hash if user else _decoy_hash(), password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def set_password(user: User, password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise ValueError(f"password {problem}")
    user.password_hash = hasher().hash(password)
    user.session_epoch += 1


def rehash_if_needed(user: User, password: str) -> None:
    """Upgrade a hash made with older parameters while the plain password is at hand."""
    if hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hasher().hash(password)
