"""Per-caller request quotas: a token bucket per presented secret (or per client address for
requests without one), kept in this process.

Why in the process and not in the database: a quota check on every request must not cost a
round trip. With several server instances behind a load balancer each enforces its own
quota, so a caller's total is at most instances × rate; size the rate with that in mind.
Secrets are not kept: buckets are keyed by a hash of the secret.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`rate` requests per second per caller, bursts up to `burst`; rate 0 disables it.

    At most `max_callers` buckets are kept; the least recently seen is forgotten first (a
    forgotten caller starts again with a full bucket, which errs on the side of serving)."""

    def __init__(self, rate: float, burst: float, *, max_callers: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.max_callers = max_callers
        self.clock = clock
        self._buckets: OrderedDict[bytes, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    @staticmethod
    def caller(secret: str | None, client_address: str | None) -> bytes:
        material = f"key:{secret}" if secret else f"addr:{client_address or ''}"
        return hashlib.blake2b(material.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def acquire(self, caller: bytes) -> float:
        """0 when the request may go ahead (and is counted), else the seconds until it may."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = _Bucket(self.burst, now)
            if len(self._buckets) > self.max_callers:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(caller)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    """Retry-After takes whole seconds; round up so that a client honouring it succeeds."""
    return str(max(1, math.ceil(seconds)))
