"""Request rates Graph enforces on some paths beside the resource-unit budget (facts file §1).

Conditional access policies and named locations allow 1 request/s per tenant for all apps
together. Parallel collectors would collide with that limit at once (two kinds, two requests
in the same second), so every request to such a path waits for its slot here: the limit is
declared once, per path prefix, and holds for every thread using one tenant's client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RateLimit:
    prefix: str  # path under the version root, e.g. "/identity/conditionalAccess/"
    per_second: float


RATE_LIMITS: tuple[RateLimit, ...] = (
    RateLimit("/identity/conditionalAccess/", 1.0),
    # Identity and access reports (audit and sign-in logs): 5 requests per 10 s per app and
    # tenant (Graph's service-specific throttling limits), apart from the RU budget.
    RateLimit("/auditLogs/", 0.5),
)
# Space requests a little wider than the limit: send times and arrival times differ by
# network jitter, and one early arrival costs a 429 and a back-off.
MARGIN = 1.15
_VERSIONS = ("/v1.0/", "/beta/")


class PathPacer:
    def __init__(
        self,
        limits: tuple[RateLimit, ...] = RATE_LIMITS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}  # prefix -> earliest time of the next request

    def limit_for(self, url: str) -> RateLimit | None:
        path = urlsplit(url).path
        for version in _VERSIONS:
            if version in path:
                path = "/" + path.split(version, 1)[1]
                break
        low = path.lower()
        return next((lim for lim in self._limits if low.startswith(lim.prefix.lower())), None)

    def acquire(self, url: str) -> None:
        """Wait for the next free slot of the url's rate limit (no wait for other paths)."""
        limit = self.limit_for(url)
        if limit is None:
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(limit.prefix, 0.0))
            self._next[limit.prefix] = slot + MARGIN / limit.per_second
        if slot > now:
            self._sleep(slot - now)

    def pause(self, url: str, seconds: float) -> bool:
        """After a 429 on a rate-limited path: its next slot moves back. False for others."""
        limit = self.limit_for(url)
        if limit is None:
            return False
        with self._lock:
            ready = self._clock() + max(seconds, 0.0)
            self._next[limit.prefix] = max(self._next.get(limit.prefix, 0.0), ready)
        return True
