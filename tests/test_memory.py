"""glibc's mmap threshold is fixed for the agent's process (agent/memory.py)."""

from __future__ import annotations

import subprocess
import sys


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
