"""EC2's API rate limit as a token bucket, on a modeled clock.

AWS documents RunInstances as a token bucket per account and region: 1,000 tokens of burst, refilled
at 2 tokens per second (EC2 API reference, "Request throttling"; see bench/latency_model.json). A call
takes one token; with none left, EC2 answers `RequestLimitExceeded`. The benchmark scales the bucket
down so a run of a few hundred nodes actually exercises throttling.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable


class TokenBucket:
    """`capacity` tokens, refilled continuously at `refill_per_second` tokens per modeled second."""

    def __init__(self, capacity: float, refill_per_second: float, now: Callable[[], float]) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least one token")
        if refill_per_second <= 0:
            raise ValueError("refill_per_second must be positive")
        self.capacity = float(capacity)
        self.refill_per_second = float(refill_per_second)
        self._now = now
        self._lock = threading.Lock()
        self._tokens = float(capacity)
        self._updated = now()

    def _refill(self) -> None:
        current = self._now()
        elapsed = max(0.0, current - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_second)
        self._updated = current

    def try_take(self) -> bool:
        """Take one token if there is one; False means the call is throttled."""
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def drain_time(self, calls: int) -> float:
        """Earliest modeled time after a full bucket by which `calls` calls can all have been admitted.

        The first `capacity` calls pass at once; each further call waits for one refill.
        """
        if calls <= 0:
            return 0.0
        beyond_burst = calls - math.floor(self.capacity)
        return max(0.0, beyond_burst) / self.refill_per_second
