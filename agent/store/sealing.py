"""Sealing one blob: compress, then encrypt and authenticate with AES-256-GCM.

A sealed blob is magic(4) | version(1) | nonce(12) | ciphertext+tag; the plaintext is a type
byte (JSON or bytes) and the compressed payload. The blob id is the AEAD's associated data, so
bytes moved to another id fail authentication instead of returning wrong data.

- Version 1 (read only): zlib.
- Version 2 (written): zstd at level 1 with a context reused per thread, about 4x less CPU than
  zlib for a 1 KiB object, which is what most objects are (zlib's per-call setup dominates at
  that size), at a ratio within a few percent. The magic and version are authenticated too.

A large object (a tenant-wide group's member list is several MB) is sealed and opened in parts
(``seal_parts``, ``open_parts``): the same bytes as ``seal`` makes and ``unseal`` reads, with
the frame's content size written as the one-shot compressor writes it, but never the
plaintext, the compressed text or the ciphertext whole in memory.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"EBRB"
ZLIB_BLOB, ZSTD_BLOB = 1, 2
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = len(MAGIC) + 1 + NONCE_BYTES
_ZSTD_HEADER = MAGIC + bytes([ZSTD_BLOB])
ZSTD_LEVEL = 1
# Nonces are drawn from the OS this many at a time: one getrandom() call per object let go of
# the GIL, and taking it back waited behind the agent's other threads, once per blob sealed.
NONCES_PER_DRAW = 1024
# A forked child must not reuse its parent's unused nonces: a fork makes every thread's draw
# stale, and the child draws its own.
_forks = [0]
if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class Damage(Exception):
    """A sealed blob that cannot be opened; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Sealer:
    """Seals and opens blobs with one key; thread-safe (zstd contexts are per thread)."""

    def __init__(self, encryption_key: bytes) -> None:
        self._aead = AESGCM(encryption_key)
        self._key = encryption_key  # for AES-GCM in parts (Cipher), which AESGCM cannot do
        self._local = threading.local()

    def seal(self, blob_id: str, type_byte: bytes, payload: bytes) -> bytes:
        return self._encrypt(blob_id, type_byte + self._packer().compress(payload))

    def seal_many(self, blobs: Sequence[tuple[str, bytes, bytes]]) -> list[bytes]:
        """``seal`` of each (blob id, type byte, payload), the same bytes, with one call to
        the compressor for all: zstd lets go of the GIL for every call, and taking it back
        waits behind the agent's other threads (a millisecond and more while they are busy),
        which per object was a good part of a backup's time."""
        payloads: list[bytes | bytearray | memoryview] = [payload for _, _, payload in blobs]
        packer = self._packer()
        frames: list[bytes]
        if len(payloads) > 1 and hasattr(packer, "multi_compress_to_buffer"):  # C backend
            compressed = packer.multi_compress_to_buffer(payloads, threads=0)
            frames = [compressed[i].tobytes() for i in range(len(compressed))]
        else:
            frames = [packer.compress(payload) for payload in payloads]
        return [
            self._encrypt(blob_id, type_byte + frame)
            for (blob_id, type_byte, _), frame in zip(blobs, frames, strict=True)
        ]

    def _packer(self) -> zstandard.ZstdCompressor:
        try:
            packer: zstandard.ZstdCompressor = self._local.packer
        except AttributeError:
            packer = self._local.packer = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        return packer

    def _nonce(self) -> bytes:
        """A fresh random 96-bit nonce (os.urandom's bytes, taken from the thread's draw)."""
        local = self._local
        draw: bytes = getattr(local, "nonces", b"")
        at: int = getattr(local, "at", 0)
        if at >= len(draw) or getattr(local, "forks", -1) != _forks[0]:
            draw = local.nonces = os.urandom(NONCE_BYTES * NONCES_PER_DRAW)
            local.forks = _forks[0]
            at = 0
        local.at = at + NONCE_BYTES
        return draw[at : at + NONCE_BYTES]

    def _encrypt(self, blob_id: str, plain: bytes) -> bytes:
        nonce = self._nonce()
        return (
            _ZSTD_HEADER + nonce + self._aead.encrypt(nonce, plain, _ZSTD_HEADER + blob_id.encode())
        )

    def unseal(self, blob_id: str, data: bytes) -> tuple[bytes, bytes]:
        """(type byte, payload) of a sealed blob; ``Damage`` when it does not open."""
        if len(data) < HEADER_BYTES + TAG_BYTES + 1:
            raise Damage("truncated")
        if data[: len(MAGIC)] != MAGIC:
            raise Damage("not a blob file (bad header)")
        version = data[len(MAGIC)]
        if version not in (ZLIB_BLOB, ZSTD_BLOB):
            raise Damage(f"unknown blob version {version}")
        aad = blob_id.encode() if version == ZLIB_BLOB else _ZSTD_HEADER + blob_id.encode()
        try:
            plain = self._aead.decrypt(
                data[len(MAGIC) + 1 : HEADER_BYTES], data[HEADER_BYTES:], aad
            )
        except InvalidTag:
            raise Damage("authentication failed") from None
        try:
            if version == ZLIB_BLOB:
                return plain[:1], zlib.decompress(plain[1:])
            return plain[:1], self._unpacker().decompress(plain[1:])
        except (zlib.error, zstandard.ZstdError):
            raise Damage("content does not decompress") from None

    def seal_parts(
        self, blob_id: str, type_byte: bytes, parts: Iterable[bytes], size: int
    ) -> Iterator[bytes]:
        """``seal``'s bytes in parts, for a payload of ``size`` bytes given in ``parts`` (the
        frame records ``size`` as ``seal``'s does, so ``unseal`` reads it whole too)."""
        nonce = self._nonce()
        encryptor = Cipher(algorithms.AES(self._key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(_ZSTD_HEADER + blob_id.encode())
        yield _ZSTD_HEADER + nonce
        yield encryptor.update(type_byte)
        # A compressor of its own: the thread's one may be in use by the caller meanwhile.
        packer = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj(size=size)
        for part in parts:
            if squeezed := packer.compress(part):
                yield encryptor.update(squeezed)
        yield encryptor.update(packer.flush()) + encryptor.finalize()
        yield encryptor.tag

    def open_parts(
        self, blob_id: str, header: bytes, tag: bytes, sealed: Iterable[bytes]
    ) -> tuple[bytes, Iterator[bytes]]:
        """``unseal`` in parts: (type byte, the payload in parts) of a sealed blob given as
        its first HEADER_BYTES, its last TAG_BYTES and the ciphertext between in parts.
        Authenticity is known only at the end: the last part raises ``Damage`` after the
        others were given out when the blob does not authenticate, and the caller must
        discard what it made of them."""
        if len(header) < HEADER_BYTES or len(tag) < TAG_BYTES:
            raise Damage("truncated")
        if header[: len(MAGIC)] != MAGIC:
            raise Damage("not a blob file (bad header)")
        version = header[len(MAGIC)]
        if version not in (ZLIB_BLOB, ZSTD_BLOB):
            raise Damage(f"unknown blob version {version}")
        aad = blob_id.encode() if version == ZLIB_BLOB else _ZSTD_HEADER + blob_id.encode()
        nonce = header[len(MAGIC) + 1 : HEADER_BYTES]
        decryptor = Cipher(algorithms.AES(self._key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(aad)
        chunks = iter(sealed)
        first = b""
        while not first:  # the type byte
            part = next(chunks, None)
            if part is None:
                raise Damage("truncated")
            first = decryptor.update(part)
        expand: Callable[[bytes], bytes]
        if version == ZLIB_BLOB:
            expand = zlib.decompressobj().decompress
        else:
            expand = zstandard.ZstdDecompressor().decompressobj().decompress

        def payload() -> Iterator[bytes]:
            try:
                if out := expand(first[1:]):
                    yield out
                for part in chunks:
                    if out := expand(decryptor.update(part)):
                        yield out
                decryptor.finalize()
            except InvalidTag:
                raise Damage("authentication failed") from None
            except (zlib.error, zstandard.ZstdError):
                raise Damage("content does not decompress") from None

        return first[:1], payload()

    def _unpacker(self) -> zstandard.ZstdDecompressor:
        try:
            unpacker: zstandard.ZstdDecompressor = self._local.unpacker
        except AttributeError:
            unpacker = self._local.unpacker = zstandard.ZstdDecompressor()
        return unpacker
