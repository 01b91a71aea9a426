"""Capped exponential backoff with full jitter (AWS architecture blog's "full jitter")."""

import random


def backoff_seconds(failures: int, first: float, cap: float) -> float:
    """A random delay in [0, min(cap, first * 2**(failures-1))]; spreads retries of many relays apart."""
    if failures <= 0:
        return 0.0
    return random.uniform(0, min(cap, first * 2 ** min(failures - 1, 30)))
