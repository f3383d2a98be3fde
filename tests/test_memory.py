"""glibc's allocator and SQLite's memory are set for the agent's process (agent/memory.py)."""

from __future__ import annotations

import subprocess
import sys
import tempfile

from agent.memory import SQLITE_HEAP_BYTES


def test_the_agent_pins_glibc_mmap_threshold_so_a_large_object_frees_its_memory() -> None:
    # In a fresh process: after a Runtime exists, a freed 8 MB buffer (the size of a
    # tenant-wide group's member list) is returned to the system, and a later one of 4 MB
    # is mapped afresh instead of being kept in the heap.
    script = """
import psutil
from agent.memory import pin_mmap_threshold
assert pin_mmap_threshold()
p = psutil.Process()
base = p.memory_info().rss
big = bytearray(8 << 20); big[::4096] = b"x" * len(big[::4096]); del big
buffers = []
for _ in range(20):
    b = bytearray(4 << 20); b[::4096] = b"y" * len(b[::4096]); buffers.append(b)
buffers.clear()
print((p.memory_info().rss - base) >> 20)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert int(out) < 16, f"{out} MB kept after freeing 80 MB of buffers"


def test_memory_threads_freed_goes_back_to_the_system_when_the_agent_releases_it() -> None:
    # Eight threads each fill 40 MB of heap (chunks below the mmap threshold) and keep one
    # chunk in a hundred: the freed memory sits between survivors, where glibc keeps it until
    # release_free_memory (called at each job heartbeat) hands its pages back.
    script = """
import threading, psutil
from agent.memory import release_free_memory, tune_allocator
assert tune_allocator()
p = psutil.Process()
base = p.memory_info().rss
kept = []
def work():
    chunks = [bytes(20000) for _ in range(2000)]
    kept.extend(chunks[::100])
    chunks.clear()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
release_free_memory()
print((p.memory_info().rss - base) >> 20)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert int(out) < 24, f"{out} MB still held after 8 threads freed 316 MB"


def test_sqlite_memory_of_the_whole_process_stays_under_the_agents_cap() -> None:
    # The catalog's pool (up to 15 connections), each reading a database larger than its
    # 2 MB page cache, as a large tenant's catalog is: uncapped, SQLite holds every cache
    # full (30 MB); after tune_allocator (every Runtime calls it), the caches share one cap
    # and reuse their pages. In fresh processes: the cap is the process's.
    script = """
import ctypes, os, sqlite3, sys, tempfile
import _sqlite3
from agent.memory import tune_allocator
used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used  # SQLite's own allocations
used.restype = ctypes.c_int64
if sys.argv[1] == "capped":
    tune_allocator()
path = os.path.join(sys.argv[2], "catalog.sqlite")
db = sqlite3.connect(path)
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
db.executemany("INSERT INTO t VALUES (?, randomblob(200))", ((i,) for i in range(120_000)))
db.commit()
pool = [sqlite3.connect(path) for _ in range(15)]
for con in pool:
    assert con.execute("SELECT count(*) FROM t WHERE length(v) > 0").fetchone() == (120_000,)
print(used() >> 20)
"""
    mb = {}
    for mode in ("uncapped", "capped"):
        with tempfile.TemporaryDirectory() as folder:
            done = subprocess.run(
                [sys.executable, "-c", script, mode, folder],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            mb[mode] = int(done.stdout)
    assert mb["uncapped"] > 24, mb  # what the catalog's pool held before
    assert mb["capped"] <= (SQLITE_HEAP_BYTES >> 20) + 2, mb
