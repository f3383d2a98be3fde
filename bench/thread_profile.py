"""CPU profile of every thread of this process (cProfile per thread, CPU-time clock).

    with profiled_threads(Path("full.pstats")):
        run_backup(...)

The collectors run in threads, which plain cProfile does not see; each thread started while the
context is open gets its own profiler timed by ``time.thread_time`` (CPU seconds, so waiting for
a page or for the GIL does not count), and the profiles are merged into one pstats file. The
profiler's own overhead inflates functions called very often; read shares, not absolutes.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def _start_in_thread(frame: Any, event: str, arg: Any) -> None:
    sys.setprofile(None)
    profile = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(profile)
    profile.enable()


@contextmanager
def profiled_threads(out: Path) -> Iterator[None]:
    main = cProfile.Profile(time.thread_time)
    threading.setprofile(_start_in_thread)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        stats = pstats.Stats(main)
        with _lock:
            for profile in _profiles:
                profile.disable()  # only stops a profile of this thread; others ended with it
                stats.add(profile)
            _profiles.clear()
        stats.dump_stats(str(out))
