"""Error types the web layer turns into responses."""

from __future__ import annotations


class PayloadError(ValueError):
    """Bad input: a 400 with `{"errors": {field: [messages]}}`."""

    def __init__(self, errors: dict[str, list[str]], status: int = 400):
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors
        self.status = status

    @classmethod
    def one(cls, field: str, message: str, status: int = 400) -> PayloadError:
        return cls({field: [message]}, status)


class NotFound(LookupError):
    """A named resource does not exist: a 404."""
