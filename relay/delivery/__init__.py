"""Deliveries out: one attempt, the queue (the only door into RQ), retries, leases, limits, the dispatcher."""
