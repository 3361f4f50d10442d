"""Per-key token buckets, in process memory.

Each uvicorn worker keeps its own buckets, so with N workers a key may burst N times the
limit; a shared limiter (Redis) belongs with multi-host deployments.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    def __init__(self, per_second: float, burst: float | None = None) -> None:
        self.rate = per_second
        self.burst = burst if burst is not None else per_second * 2
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: int) -> float | None:
        """Spend one token; None if allowed, else the seconds until the next token."""
        if self.rate <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, now)
                return None
            self._buckets[key_id] = (tokens, now)
            return max(1.0, (1 - tokens) / self.rate)
