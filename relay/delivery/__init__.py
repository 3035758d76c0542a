"""Delivery: one attempt, the queue, retries, leases on the database clock, limits and the engine."""
