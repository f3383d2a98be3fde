"""A resource-unit token bucket shared by every worker reading one tenant.

Graph throttles per app + tenant over a 10 s window (facts file §1). Pacing below that limit
costs far less time than absorbing 429s, so workers acquire RU before each request, settle with
the ``x-ms-resource-unit`` header after it, and all stop together when any of them is throttled.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

TENANT_SIZE_RU = {"S": 3_500, "M": 5_000, "L": 8_000}

# AIMD: a throttle cuts the rate by this factor; each clean response gives a little back.
_DECREASE = 0.8
_RECOVER_STEP = 0.005
_MIN_FACTOR = 0.25
_EPSILON = 1e-6


class ResourceBudget:
    def __init__(
        self,
        ru_per_window: int,
        window_s: float = 10.0,
        target: float = 0.95,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if ru_per_window <= 0 or window_s <= 0 or not 0 < target <= 1:
            raise ValueError("ru_per_window and window_s must be positive, target in (0, 1]")
        self.ru_per_window = ru_per_window
        self.window_s = window_s
        self.target = target
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._factor = 1.0
        self._tokens = self.capacity
        self._updated = clock()
        self._paused_until = 0.0
        self._spent = 0
        self.throttles = 0

    @classmethod
    def for_tenant_size(
        cls,
        size: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ResourceBudget:
        """S (<50 users) 3,500 / M (50-500) 5,000 / L (>500) 8,000 RU per 10 s."""
        try:
            ru = TENANT_SIZE_RU[size.upper()]
        except KeyError:
            raise ValueError(f"unknown tenant size {size!r}; expected S, M or L") from None
        return cls(ru, clock=clock, sleep=sleep)

    @property
    def capacity(self) -> float:
        """RU the bucket holds when full: the window's quota times target and the AIMD factor."""
        return self.ru_per_window * self.target * self._factor

    @property
    def rate(self) -> float:
        """RU per second currently allowed."""
        return self.capacity / self.window_s

    @property
    def spent(self) -> int:
        with self._lock:
            return self._spent

    @property
    def paused_until(self) -> float:
        with self._lock:
            return self._paused_until

    def acquire(self, cost: int) -> None:
        """Block until ``cost`` RU are affordable, then spend them."""
        cost = max(int(cost), 0)
        while True:
            with self._lock:
                now = self._refill()
                if now < self._paused_until:
                    wait = self._paused_until - now
                else:
                    # A request dearer than the whole bucket goes once the bucket is full.
                    missing = min(cost, self.capacity) - self._tokens
                    if missing <= _EPSILON:  # float dust must not spin the loop
                        self._tokens -= cost
                        self._spent += cost
                        return
                    wait = missing / self.rate
            self._sleep(wait)

    def settle(self, estimated: int, actual: int | None) -> None:
        """Correct an estimate with what Graph reported, and count a clean response."""
        with self._lock:
            if actual is not None:
                self._tokens -= actual - estimated
                self._spent += actual - estimated
            self._factor = min(1.0, self._factor + _RECOVER_STEP)

    def pause(self, seconds: float) -> None:
        """After a 429: every acquirer waits ``seconds``; the rate drops."""
        with self._lock:
            now = self._refill()
            if now >= self._paused_until:  # one cut per throttle episode, not per thread
                self.throttles += 1
                self._factor = max(_MIN_FACTOR, self._factor * _DECREASE)
            self._paused_until = max(self._paused_until, now + max(seconds, 0.0))
            # Graph's bucket is empty when it throttles; ours restarts empty too.
            self._tokens = min(self._tokens, 0.0)

    def _refill(self) -> float:
        now = self._clock()
        elapsed = max(now - self._updated, 0.0)
        self._updated = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        return now


# Facts file §1: directory writes are limited apart from resource units — 3,000 write
# requests per 2 min 30 s per app and tenant.
WRITES_PER_WINDOW = 3_000
WRITE_WINDOW_S = 150.0


class WriteBudget:
    """The write quota of one app in one tenant, shared by every worker writing to it.

    Graph counts writes in a window (no refill rate to lean on), so this keeps the send times of
    the last window and lets a write go only while fewer than ``target`` times the quota were sent in
    it; a 429 for the write quota pauses every writer for its Retry-After.
    """

    def __init__(
        self,
        writes: int = WRITES_PER_WINDOW,
        window_s: float = WRITE_WINDOW_S,
        target: float = 0.95,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if writes <= 0 or window_s <= 0 or not 0 < target <= 1:
            raise ValueError("writes and window_s must be positive, target in (0, 1]")
        self.limit = max(int(writes * target), 1)
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self.writes = 0  # writes let through (retries of throttled writes included)
        self.waits = 0  # times a writer had to wait for the window or a pause
        self.throttles = 0

    def acquire(self, count: int = 1) -> None:
        """Block until ``count`` more writes fit in the window, then record them."""
        count = min(max(int(count), 0), self.limit)
        if count == 0:
            return
        waited = False
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.window_s:
                    self._sent.popleft()
                if now < self._paused_until:
                    wait = self._paused_until - now
                elif len(self._sent) + count <= self.limit:
                    self._sent.extend([now] * count)
                    self.writes += count
                    self.waits += int(waited)
                    return
                else:  # until enough of the oldest sends leave the window
                    wait = (
                        self._sent[len(self._sent) + count - self.limit - 1] + self.window_s - now
                    )
            waited = True
            self._sleep(max(wait, 0.001))

    def pause(self, seconds: float) -> None:
        """After a 429 for the write quota: every writer waits ``seconds``."""
        with self._lock:
            now = self._clock()
            if now >= self._paused_until:
                self.throttles += 1
            self._paused_until = max(self._paused_until, now + max(seconds, 0.0))
