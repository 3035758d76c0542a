"""The worker process's Runtime, set at worker startup and built from the environment otherwise."""

from __future__ import annotations

from relay.config import Settings
from relay.runtime import Runtime

_runtime: Runtime | None = None


def set_runtime(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def current_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(Settings.from_env())
    return _runtime
