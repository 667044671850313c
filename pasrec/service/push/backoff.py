"""How long a push waits before its next delivery attempt."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, base_s: float, max_s: float, rng: random.Random) -> None:
        self._base_s = base_s
        self._max_s = max_s
        # Jitter only spreads retries; a seeded generator makes a simulation repeatable.
        self._rng = rng

    def delay_s(self, attempt: int, retry_after_s: float | None) -> float:
        """Delay before the attempt after `attempt`: the receiver's Retry-After when given,
        else exponential with jitter (a uniform draw from half to all of it); both capped
        at `max_s`."""
        if retry_after_s is not None:
            return min(retry_after_s, self._max_s)
        ceiling = min(self._base_s * 2 ** (attempt - 1), self._max_s)
        return self._rng.uniform(ceiling / 2, ceiling)
