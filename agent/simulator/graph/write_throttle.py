"""The directory write quota (facts file §1): 3,000 write requests per 2 min 30 s per app and
tenant, on top of the resource-unit bucket. A sliding window of admitted writes per
(app, tenant); a write over the quota is a 429 with Retry-After = when the oldest write in
the window leaves it.

The quota and window come from ``Faults.write_limit`` / ``Faults.write_window_s`` (defaults:
the documented 3,000 per 150 s), so a test or runbook can shrink them to see the limit quickly.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from agent.simulator.graph.write_rules import READ_ACTIONS

WRITE_LIMIT = 3000
WRITE_WINDOW_S = 150.0
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def is_write(method: str, path: str) -> bool:
    """A request that counts against the write quota ($batch items count one by one)."""
    if method not in WRITE_METHODS:
        return False
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return path.rstrip("/") != "/$batch" and last not in READ_ACTIONS


class WriteLimiter:
    def __init__(self) -> None:
        self._clock = time.monotonic
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, app_id: str, tenant_id: str, limit: int, window_s: float) -> float | None:
        """Admit one write (None), or the seconds until the next one would be admitted."""
        now = self._clock()
        with self._lock:
            admitted = self._windows.setdefault((app_id, tenant_id), deque())
            while admitted and admitted[0] <= now - window_s:
                admitted.popleft()
            while len(admitted) > max(limit, 0):  # the limit was lowered at runtime
                admitted.popleft()
            if len(admitted) < limit:
                admitted.append(now)
                return None
            if not admitted:  # a limit of 0: nothing is ever admitted
                return window_s
            return max(admitted[0] + window_s - now, 0.001)

    def used(self, app_id: str, tenant_id: str, window_s: float) -> int:
        now = self._clock()
        with self._lock:
            admitted = self._windows.get((app_id, tenant_id), deque())
            return sum(1 for t in admitted if t > now - window_s)

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
