"""Sending messages exactly once: random ids, peers, the send itself."""
