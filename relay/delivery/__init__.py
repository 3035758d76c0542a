"""Deliveries out: one attempt, the queue (the only door into RQ), retries, replay, limits, the breaker,
supersede and debounce."""
