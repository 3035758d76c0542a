"""Deliveries out: one attempt, the queue (the only door into RQ), retries, leases, limits, the dispatcher,
the breaker, rate limits, supersede and debounce."""
