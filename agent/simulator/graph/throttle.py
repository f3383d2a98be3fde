"""Identity-and-access throttling (facts file §1): a token bucket of resource units per
(app, tenant) per 10 s, sized by the tenant's user count, and the documented request costs."""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass

WINDOW_S = 10.0

# Facts file §1: base costs for reads; anything not listed costs 1.
_COSTS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^/users/?$"), 2),
    (re.compile(r"^/applications/?$"), 2),
    (re.compile(r"^/applications/[^/]+/extensionProperties/?$"), 2),
    (re.compile(r"^/oauth2PermissionGrants(/[^/]+)?/?$"), 2),
    (re.compile(r"^/servicePrincipals/[^/]+/appRoleAssignments/?$"), 2),
    (re.compile(r"^/groups/[^/]+/members(/.*)?$"), 3),
    (re.compile(r"^/groups/[^/]+/transitiveMembers(/.*)?$"), 5),
    (
        re.compile(
            r"^/(users|groups)/[^/]+/(memberOf|ownedObjects|transitiveMemberOf|licenseDetails)"
        ),
        2,
    ),
    (re.compile(r"^/(subscribedSkus|contracts)"), 3),
)


# Facts file §1: conditional access policies and named locations allow 1 request/s per tenant,
# for all apps together, beside the resource-unit budget.
RATE_LIMITS: tuple[tuple[re.Pattern[str], float], ...] = (
    (re.compile(r"^/identity/conditionalAccess/(policies|namedLocations)(/|$)", re.I), 1.0),
)


class RateLimiter:
    """Requests per second per (tenant, limited path family); a refused request costs nothing."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def take(self, tenant_id: str, path: str) -> float | None:
        """None if the request may go now, else the seconds until it may."""
        for pattern, per_second in RATE_LIMITS:
            if pattern.match(path):
                key = (tenant_id, pattern.pattern)
                now = time.monotonic()
                with self._lock:
                    ready = self._next.get(key, 0.0)
                    if now < ready:
                        return ready - now
                    self._next[key] = now + 1.0 / per_second
                return None
        return None

    def reset(self) -> None:
        with self._lock:
            self._next.clear()


def budget_for(user_count: int) -> int:
    """RU per 10 s for one app in one tenant: S (<50 users), M (50-500), L (>500)."""
    if user_count < 50:
        return 3500
    if user_count <= 500:
        return 5000
    return 8000


def request_cost(method: str, path: str, query: dict[str, list[str]]) -> int:
    """Documented RU cost of a request; ``path`` is relative to /v1.0."""
    if path.endswith("/delta"):
        return 1  # facts file §1: delta has no listed cost
    if method != "GET":
        return 1
    cost = 1
    for pattern, value in _COSTS:
        if pattern.match(path):
            cost = value
            break
    if query.get("$select"):
        cost -= 1
    if query.get("$expand"):
        cost += 1
    top = (query.get("$top") or [""])[-1]
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(cost, 1)


@dataclass
class Decision:
    allowed: bool
    retry_after: float = 0.0
    used_fraction: float = 0.0  # of the budget, after this request


class Bucket:
    """Token bucket refilled continuously at ``capacity`` per 10 s."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.level = capacity
        self.stamp = time.monotonic()

    def take(self, cost: float) -> Decision:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.capacity / WINDOW_S)
        self.stamp = now
        if self.level >= cost:
            self.level -= cost
            return Decision(True, 0.0, 1 - self.level / self.capacity)
        wait = (cost - self.level) * WINDOW_S / self.capacity
        return Decision(False, wait, 1 - self.level / self.capacity)


class Throttler:
    """One bucket per (app, tenant); ``scale`` shrinks budgets (tests) — 0 never throttles."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._lock = threading.Lock()

    def take(
        self, app_id: str, tenant_id: str, user_count: int, cost: int, scale: float
    ) -> Decision:
        capacity = budget_for(user_count) * scale
        with self._lock:
            key = (app_id, tenant_id)
            bucket = self._buckets.get(key)
            if bucket is None or not math.isclose(bucket.capacity, capacity):
                bucket = self._buckets[key] = Bucket(capacity)
            return bucket.take(cost)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


# Identity and access reports (audit and sign-in logs): 5 requests per 10 s per app + tenant
# (Microsoft Graph service-specific throttling limits), counted in requests, not RU.
REPORTS_PER_WINDOW = 5


class ReportsLimiter:
    """The reports service's own limit, separate from the directory RU budget."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._lock = threading.Lock()

    def take(self, app_id: str, tenant_id: str) -> Decision:
        with self._lock:
            bucket = self._buckets.setdefault((app_id, tenant_id), Bucket(REPORTS_PER_WINDOW))
            return bucket.take(1)


def retry_after_header(seconds: float) -> str:
    # Facts file §1 shows fractional seconds ("2.128"); whole seconds, rounded up, keep
    # strict RFC 7231 clients happy too.
    return str(max(1, math.ceil(seconds)))
