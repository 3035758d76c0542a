"""Delivery: one attempt, the queue, retries, limits, the circuit breaker, supersede and debounce."""
