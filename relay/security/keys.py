"""Encryption keys: make a new one, and re-encrypt everything stored under the first configured key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.models import FleetRow, Secret, Webhook
from relay.security.secrets import SEALED_PREFIX, DecryptionError, Vault, is_sealed


def generate() -> str:
    return Fernet.generate_key().decode()


@dataclass
class Rotation:
    secrets: int = 0
    webhooks: int = 0
    sealed_fields: int = 0
    signing_secrets: int = 0

    def summary(self) -> str:
        return (f"re-encrypted {self.secrets} secrets, {self.sealed_fields} sealed fields in {self.webhooks} "
                f"webhooks and {self.signing_secrets} signing secrets under the first key")


class RotationError(Exception):
    """A stored value no configured key can decrypt; the message names the row, never a value."""


def rotate(session: Session, vault: Vault) -> Rotation:
    """Re-encrypt in the caller's transaction, rows locked; any failure leaves the caller to roll back."""
    done = Rotation()
    for secret in session.scalars(select(Secret).order_by(Secret.name).with_for_update()):
        secret.ciphertext = _rotated(vault, secret.ciphertext, f"secret {secret.name!r}")
        done.secrets += 1
    for hook in session.scalars(select(Webhook).order_by(Webhook.uuid).with_for_update()):
        where = f"webhook {hook.uuid!r}"
        counter = [0]
        config = _rotate_config(vault, hook.config or {}, where, counter)
        if counter[0]:
            hook.config = config  # a new object, so the JSON column is written
            done.sealed_fields += counter[0]
        if hook.signing_secret:
            hook.signing_secret = _rotated(vault, hook.signing_secret, f"{where} (signing secret)")
            done.signing_secrets += 1
        if counter[0] or hook.signing_secret:
            done.webhooks += 1
    for row in session.scalars(select(FleetRow).with_for_update()):
        row.key_check = _rotated(vault, row.key_check, "the fleet's key check")
    session.flush()
    return done


def _rotate_config(vault: Vault, value: Any, where: str, counter: list[int], path: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _rotate_config(vault, v, where, counter, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_rotate_config(vault, v, where, counter, f"{path}[{i}]") for i, v in enumerate(value)]
    if is_sealed(value):
        counter[0] += 1
        return SEALED_PREFIX + _rotated(vault, value[len(SEALED_PREFIX):], f"{where} field {path}")
    return value


def _rotated(vault: Vault, token: str, where: str) -> str:
    try:
        vault.decrypt(token)  # a clear error naming the row; rotate() alone would only say InvalidToken
        return vault.rotate(token)
    except (DecryptionError, InvalidToken, ValueError, TypeError):
        raise RotationError(f"{where} cannot be decrypted with any key in RELAY_ENCRYPTION_KEYS "
                            "(add the key it was encrypted with after the new one)") from None
