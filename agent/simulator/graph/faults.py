"""Fault injection for the simulated Graph, switchable at runtime from tests and runbooks."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Mutable at runtime; draws come from one seeded RNG so a run is repeatable."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    throttle_probability: float = 0.0  # extra 429 storms on top of the RU budget
    error_rate: float = 0.0  # 503 Service Unavailable with Retry-After
    reset_rate: float = 0.0  # drop the connection without an answer
    expire_delta_tokens: bool = False  # every deltaLink answers 410 Gone (forced resync)
    disable_throttling: bool = False
    throttle_scale: float = 1.0  # multiplies RU budgets (e.g. 0.01 to throttle quickly)
    # The write quota per app + tenant (facts file §1: 3,000 writes per 150 s); lower both to
    # see write throttling in seconds instead of minutes.
    write_limit: int = 3000
    write_window_s: float = 150.0
    fail_paths: dict[str, int] = field(default_factory=dict)  # regex on /v1.0 path -> status
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def roll(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            return self._rng.random() < probability

    def delay_s(self) -> float:
        if self.latency_ms <= 0 and self.jitter_ms <= 0:
            return 0.0
        with self._lock:
            jitter = self._rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.latency_ms + jitter) / 1000

    def forced_status(self, path: str) -> int | None:
        for pattern, status in list(self.fail_paths.items()):
            if re.search(pattern, path):
                return status
        return None

    def reset(self) -> None:
        """Back to a healthy service (throttling on, no injected faults)."""
        self.latency_ms = self.jitter_ms = 0.0
        self.throttle_probability = self.error_rate = self.reset_rate = 0.0
        self.expire_delta_tokens = self.disable_throttling = False
        self.throttle_scale = 1.0
        self.write_limit, self.write_window_s = 3000, 150.0
        self.fail_paths = {}
