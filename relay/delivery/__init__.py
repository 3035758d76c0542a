"""Deliveries out: one attempt, the queue (the only door into RQ), the retry schedule, replay."""
