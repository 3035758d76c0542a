"""Encryption at rest for secrets (MultiFernet: the first key encrypts, every key decrypts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.errors import NotFound, PayloadError
from relay.models import Secret, Webhook, utcnow
from relay.redact import KnownSecrets
from relay.templating import PLACEHOLDER

SEALED_PREFIX = "enc:"
MASK = "**********"
NAME = re.compile(r"[A-Za-z0-9]{1,100}")
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
    secret = session.get(Secret, name) if NAME.fullmatch(name) else None
    if secret is None:
        raise NotFound(f"no secret {name[:100]!r}")
    return secret


def save(session: Session, vault: Vault, name: object, value: object, description: object
         ) -> tuple[Secret, bool]:
    """Validate and encrypt a secret into the session (the caller commits); True when it is new."""
    errors: dict[str, list[str]] = {}
    if not isinstance(name, str) or not NAME.fullmatch(name):
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


@dataclass(frozen=True)
class Usage:
    """One webhook that names a secret, and the fields where it does (`slack.webhook_url`, `request.headers.X`)."""

    uuid: str
    description: str
    fields: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "description": self.description, "fields": list(self.fields)}


def _named(value: Any, path: str):
    """(field path, secret name) for every ${user.NAME} in a config value, nested maps and lists included."""
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            if match.group(1) == "user":
                yield path, match.group(2)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _named(key, path)
            yield from _named(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _named(item, path)


def usages(session: Session) -> dict[str, list[Usage]]:
    """Secret name → the webhooks using it, across every field of every integration kind."""
    found: dict[str, dict[str, list[str]]] = {}
    hooks = {h.uuid: h for h in session.scalars(select(Webhook).order_by(Webhook.description, Webhook.uuid))}
    for hook in hooks.values():
        for path, name in _named(hook.config or {}, hook.kind):
            fields = found.setdefault(name, {}).setdefault(hook.uuid, [])
            if path not in fields:
                fields.append(path)
    return {name: [Usage(uuid, hooks[uuid].description or "", tuple(fields)) for uuid, fields in by_hook.items()]
            for name, by_hook in found.items()}


def delete(session: Session, name: str, force: bool = False) -> Secret:
    """Delete a secret (the caller audits and commits); one that a webhook uses is refused with a 409
    listing them, unless forced."""
    secret = find(session, name)
    used = usages(session).get(secret.name, [])
    if used and not force:
        raise SecretInUse(secret.name, used)
    session.delete(secret)
    return secret


class SecretInUse(PayloadError):
    """A 409: the secret is named by webhooks; `usages` lists them."""

    def __init__(self, name: str, used: list[Usage]):
        titles = ", ".join(u.description or u.uuid for u in used)
        super().__init__({"name": [f"{name} is used by {len(used)} webhook(s): {titles}; "
                                   "change them first, or delete with force=true"]}, 409)
        self.usages = used
