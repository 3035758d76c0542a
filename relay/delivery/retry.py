"""When the next attempt happens, given the schedule, the attempts made and the target's Retry-After."""

from __future__ import annotations

MAX_RETRY_AFTER = 24 * 3600.0


def next_delay(schedule: tuple[float, ...], attempts_made: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt, or None when the schedule is used up."""
    if attempts_made > len(schedule):
        return None
    delay = schedule[attempts_made - 1]
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay
