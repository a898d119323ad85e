"""Per-client sliding-window rate limits (the reference's: /step 60/min, /reset 30/min, ...)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from .config import RateLimit

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, limits: dict[str, RateLimit]) -> None:
        self.limits = dict(limits)
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, bucket: str, client: str, now: float | None = None) -> float | None:
        """Record a request; None if allowed, else the seconds to wait before retrying."""
        limit = self.limits.get(bucket)
        if limit is None:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault((bucket, client), deque())
            while hits and now - hits[0] >= limit.per_s:
                hits.popleft()
            if len(hits) >= limit.requests:
                return max(0.0, hits[0] + limit.per_s - now)
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle clients
                self._hits = {k: v for k, v in self._hits.items() if v}
            return None

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))
