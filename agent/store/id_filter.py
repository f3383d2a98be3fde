"""A Bloom filter of blob ids: "certainly not stored" without asking the index.

A put of new content would otherwise look its id up in SQLite first (~7 µs of CPU on a large
index, a B-tree page read per level); the filter answers that in well under a microsecond.
"Maybe stored" is confirmed in the index, so a false positive costs only that lookup. Blob
ids are HMAC-SHA256 values, uniformly distributed: their own bits serve as the filter's hash
functions. Memory is 2-4 bytes per id (1 MiB at 500,000 blobs): small and fixed per blob,
loaded from the index once per process and kept up to date with what this process adds.
"""

from __future__ import annotations

from collections.abc import Iterable

BITS_PER_ID = 16  # with 4 probes: under 0.3% false positives while not past capacity
MIN_BITS = 1 << 20  # 128 KiB
_PROBES = (0, 32, 64, 96)  # each probe takes 32 bits of the id


class IdFilter:
    def __init__(self, expected: int) -> None:
        bits = MIN_BITS
        while bits < 2 * expected * BITS_PER_ID and bits < 1 << 32:
            bits <<= 1
        self._bits = bytearray(bits // 8)
        self._mask = bits - 1
        self.capacity = bits // BITS_PER_ID
        self.count = 0

    def add(self, raw_id: bytes) -> None:
        h = int.from_bytes(raw_id[:16], "little")
        bits, mask = self._bits, self._mask
        for shift in _PROBES:
            p = (h >> shift) & mask
            bits[p >> 3] |= 1 << (p & 7)
        self.count += 1

    def update(self, raw_ids: Iterable[bytes]) -> None:
        for raw_id in raw_ids:
            self.add(raw_id)

    def __contains__(self, raw_id: bytes) -> bool:
        """False: certainly never added. True: maybe."""
        h = int.from_bytes(raw_id[:16], "little")
        bits, mask = self._bits, self._mask
        for shift in _PROBES:
            p = (h >> shift) & mask
            if not bits[p >> 3] >> (p & 7) & 1:
                return False
        return True

    @property
    def full(self) -> bool:
        return self.count > self.capacity
