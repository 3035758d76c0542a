"""Encryption at rest for secrets (MultiFernet: the first key encrypts, every key decrypts)."""

from __future__ import annotations

import re

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.orm import Session

from relay.errors import NotFound, PayloadError
from relay.models import Secret, utcnow
from relay.redact import KnownSecrets

SEALED_PREFIX = "enc:"
MASK = "**********"
NAME = re.compile(r"^[A-Za-z0-9]{1,100}$")
MAX_VALUE = 64 * 1024


class DecryptionError(Exception):
    """No configured key can decrypt a stored value."""


class Vault:
    def __init__(self, keys: tuple[str, ...], known: KnownSecrets | None = None):
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self.known = known if known is not None else KnownSecrets()

    def encrypt(self, plaintext: str) -> str:
        self.known.add(plaintext)
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            plaintext = self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise DecryptionError("a stored secret cannot be decrypted with RELAY_ENCRYPTION_KEYS "
                            "(was the key that encrypted it removed?)") from None
        self.known.add(plaintext)
        return plaintext

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()

    def seal(self, plaintext: str) -> str:
        """A literal secret field value as stored inside a webhook's config."""
        return SEALED_PREFIX + self.encrypt(plaintext)

    def unseal(self, value: str) -> str:
        return self.decrypt(value[len(SEALED_PREFIX):]) if is_sealed(value) else value


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def find(session: Session, name: str) -> Secret:
    """The stored secret called `name`, or NotFound (a 404) naming it."""
    secret = session.get(Secret, name) if NAME.match(name) else None
    if secret is None:
        raise NotFound(f"no secret {name[:100]!r}")
    return secret


def save(session: Session, vault: Vault, name: object, value: object, description: object
         ) -> tuple[Secret, bool]:
    """Validate and encrypt a secret into the session (the caller commits); True when it is new."""
    errors: dict[str, list[str]] = {}
    if not isinstance(name, str) or not NAME.match(name):
        errors["name"] = ["must be 1 to 100 letters and digits (A-Z, a-z, 0-9)"]
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE:
        errors["value"] = [f"must be a non-empty string of at most {MAX_VALUE // 1024} KiB"]
    if description is not None and (not isinstance(description, str) or len(description) > 1000):
        errors["description"] = ["must be a string of at most 1000 characters"]
    if errors:
        raise PayloadError(errors)
    secret = session.get(Secret, name)
    created = secret is None
    if created:
        secret = Secret(name=name, description=description or "")
        session.add(secret)
    elif description is not None:
        secret.description = description
    secret.ciphertext = vault.encrypt(value)
    secret.updated_at = utcnow()
    session.flush()
    return secret, created
