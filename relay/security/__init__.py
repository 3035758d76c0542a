"""Secrets vault, keys, API tokens, users, web sessions, rate limits and the audit log."""
