"""Retention deletes in batches, so no prune holds one long transaction over a big table."""

from __future__ import annotations

from collections.abc import Callable


def delete_in_batches(delete_batch: Callable[[], int], batch_size: int) -> int:
    """Run ``delete_batch`` (one batch of at most ``batch_size`` rows, its own statement)
    until a batch deletes fewer; how many rows in all."""
    deleted = 0
    while True:
        count = delete_batch()
        deleted += count
        if count < batch_size:
            return deleted
