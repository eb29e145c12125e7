"""Per-key token buckets: the maths of a 429 and its integer Retry-After.

Each replica limits on its own (state in memory): with N replicas behind a balancer a key gets
up to N times the configured rate, which is what the limit is for (shielding one process).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field


@dataclass
class Bucket:
    tokens: float
    updated: float


@dataclass
class TokenBuckets:
    rate_per_s: float
    burst: int
    _buckets: dict[str, Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, name: str, now: float) -> int:
        """0 when a token was taken; otherwise the whole seconds to wait (at least 1)."""
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = self._buckets[name] = Bucket(float(self.burst), now)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0
            return retry_after_s(bucket.tokens, self.rate_per_s)


def retry_after_s(tokens: float, rate_per_s: float) -> int:
    """Seconds until one token is back, rounded up to a whole second (Retry-After is integer)."""
    if rate_per_s <= 0:
        return 60
    return max(1, math.ceil((1.0 - tokens) / rate_per_s))
