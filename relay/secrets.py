"""Encryption at rest for secrets (MultiFernet: the first key encrypts, every key decrypts)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SEALED_PREFIX = "enc:"
MASK = "**********"


class DecryptionError(Exception):
    """No configured key can decrypt a stored value."""


class Vault:
    def __init__(self, keys: tuple[str, ...]):
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise DecryptionError("a stored secret cannot be decrypted with RELAY_ENCRYPTION_KEYS "
                            "(was the key that encrypted it removed?)") from None

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()

    def seal(self, plaintext: str) -> str:
        """A literal secret field value as stored inside a webhook's config."""
        return SEALED_PREFIX + self.encrypt(plaintext)

    def unseal(self, value: str) -> str:
        return self.decrypt(value[len(SEALED_PREFIX):]) if is_sealed(value) else value


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)
