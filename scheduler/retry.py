"""How long to wait before the next attempt: one backoff for deliveries and webhooks alike."""

from __future__ import annotations

import random


def backoff_seconds(attempt: int, *, base: float, cap: float, jitter: float = 0.0) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    `base` doubles with each attempt up to `cap`; `jitter` (0.2 = ±20 %) spreads retries that
    failed together so they do not all come back in the same second.
    """
    wait = float(min(cap, base * 2 ** (attempt - 1)))
    return wait * random.uniform(1 - jitter, 1 + jitter) if jitter else wait
