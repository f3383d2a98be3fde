"""Dedupe on the write path: a put of stored content writes nothing, whether the index or the
Bloom filter of ids (loaded once a backup keeps meeting new content) answers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.store.id_filter import IdFilter
from agent.store.keys import RepositoryKey
from agent.store.packs import BUFFER_BYTES, FILTER_WINDOW, INDEX_ROWS, PackIndex
from agent.store.repository import Repository, canonical_json
from agent.store.sealing import HEADER_BYTES, MAGIC, NONCE_BYTES, Sealer


def test_a_first_backup_and_the_next_store_each_object_once(tmp_path: Path) -> None:
    key = RepositoryKey.generate()
    repo = Repository.init(tmp_path / "repo", key)
    objects = [{"id": f"user-{i}", "displayName": f"User {i}"} for i in range(FILTER_WINDOW + 5000)]
    ids = [repo.put(o) for o in objects]  # all new: past the window the filter answers
    repo.sync()
    count, size = repo.stats()
    assert count == len(objects)
    assert [repo.put(o) for o in objects] == ids  # stored: found, nothing written
    repo.sync()
    assert repo.stats() == (count, size)
    assert repo.put({"id": "one more"}) not in ids
    repo.sync()
    assert repo.stats()[0] == count + 1
    again = Repository.open(tmp_path / "repo", key)  # the next backup, another process
    assert [again.put(o) for o in objects[::7]] == ids[::7]
    again.sync()
    assert again.stats()[0] == count + 1
    assert again.get(ids[-1]) == objects[-1] and again.check_blob(ids[0]) is None


def test_content_another_writer_stored_meanwhile_is_kept_once_in_the_index(
    tmp_path: Path,
) -> None:
    key = RepositoryKey.generate()
    first = Repository.init(tmp_path / "repo", key)
    [first.put({"id": i}) for i in range(FILTER_WINDOW)]  # first's filter is loaded now
    other = Repository.open(tmp_path / "repo", key)
    shared = other.put({"id": "written by the other writer"})
    other.sync()
    # first's filter does not know it: first stores a second copy, the index keeps one.
    assert first.put({"id": "written by the other writer"}) == shared
    first.sync()
    reader = Repository.open(tmp_path / "repo", key)
    every = list(reader.iter_blob_ids())
    assert len(every) == len(set(every)) == FILTER_WINDOW + 1
    assert reader.get(shared) == {"id": "written by the other writer"}


def test_the_filter_never_forgets_an_id_and_rarely_imagines_one() -> None:
    id_filter = IdFilter(100_000)
    ids = [os.urandom(32) for _ in range(id_filter.capacity)]
    id_filter.update(ids)
    assert all(i in id_filter for i in ids)
    imagined = sum(os.urandom(32) in id_filter for _ in range(100_000))
    assert imagined < 1000  # under 1% at its capacity


def test_the_filter_takes_the_same_memory_for_a_50k_and_a_100k_user_tenant() -> None:
    # A first backup loads the filter after 20,000 puts and adds every blob after: 235,000
    # blobs at 50,000 users, 470,000 at 100,000. Both fit one filter of the same size, still
    # rarely wrong at the larger; memory does not step up between the two.
    sizes = {}
    for blobs in (235_000, 470_000):
        id_filter = IdFilter(FILTER_WINDOW)
        id_filter.update(os.urandom(32) for _ in range(blobs))
        assert not id_filter.full
        sizes[blobs] = id_filter.nbytes
        if blobs == 470_000:
            imagined = sum(os.urandom(32) in id_filter for _ in range(100_000))
            assert imagined < 500  # under 0.5%
    assert sizes[235_000] == sizes[470_000] <= 1 << 20


@pytest.mark.slow  # indexes 720,000 ids
def test_the_index_filter_grows_with_the_index(tmp_path: Path) -> None:
    index = PackIndex(tmp_path / "index.sqlite")
    pack = index.register("p")
    ids = [os.urandom(32) for _ in range(FILTER_WINDOW)]
    index.add(pack, [(raw, n, 10) for n, raw in enumerate(ids)], 0)
    assert not any(index.stored(os.urandom(32)) for _ in range(FILTER_WINDOW))  # loads it
    more = sorted(os.urandom(32) for _ in range(IdFilter(FILTER_WINDOW).capacity))  # past it
    index.add(pack, [(raw, n, 10) for n, raw in enumerate(more)], 0)
    assert all(index.stored(raw) for raw in ids[::10] + more[::10])
    index.close()


def test_blobs_written_before_the_index_knows_them_are_found_and_read(tmp_path: Path) -> None:
    key = RepositoryKey.generate()
    repo = Repository.init(tmp_path / "repo", key)
    objects = [{"id": i, "notes": os.urandom(400).hex()} for i in range(3000)]
    ids = [repo.put(o) for o in objects]
    assert len(objects) < INDEX_ROWS
    packs = list((tmp_path / "repo" / "packs").glob("*.pack"))
    size = packs[0].stat().st_size
    assert size > BUFFER_BYTES  # some in the pack file, none in the index yet
    assert [repo.put(o) for o in objects] == ids and packs[0].stat().st_size == size
    assert repo.get(ids[0]) == objects[0] and repo.get(ids[-1]) == objects[-1]
    other = Repository.open(tmp_path / "repo", key)  # another process: not before sync()
    assert not other.exists(ids[0])
    repo.sync()
    assert all(other.get(b) == o for b, o in zip(ids, objects, strict=True))
    assert repo.stats()[0] == len(objects)


def test_a_page_stored_at_once_is_what_storing_each_object_gives(tmp_path: Path) -> None:
    """A collector stores a page's objects together (one compressor call): the same ids, the
    same content read back and verified, a repeat stored once, and a fresh nonce per blob."""
    key = RepositoryKey.generate()
    repo = Repository.init(tmp_path / "repo", key)
    page = [
        {"id": f"user-{i}", "displayName": f"User {i}", "jobTitle": "x" * i} for i in range(300)
    ]
    payloads = [canonical_json(o) for o in page]
    blobs = [(repo.canonical_id(p), p) for p in payloads]
    repo.put_canonical_many([*blobs, blobs[0]])  # a repeat within the page too
    repo.sync()
    assert [blob_id for blob_id, _ in blobs] == [repo.blob_id(o) for o in page]
    assert repo.stats()[0] == len(page)
    for (blob_id, _), obj in zip(blobs, page, strict=True):
        assert repo.get(blob_id) == obj and repo.check_blob(blob_id) is None
    assert [repo.put(o) for o in page] == [blob_id for blob_id, _ in blobs]  # found: kept once
    repo.sync()
    assert repo.stats()[0] == len(page)
    assert len({_nonce(repo, blob_id) for blob_id, _ in blobs}) == len(page)


def _nonce(repo: Repository, blob_id: str) -> bytes:
    """The nonce a stored blob was sealed with (after its magic and version byte)."""
    found = repo.location(blob_id)
    assert found is not None
    path, offset, _ = found
    with path.open("rb") as fh:
        fh.seek(offset + HEADER_BYTES - NONCE_BYTES)
        return fh.read(NONCE_BYTES)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_process_never_seals_with_its_parents_next_nonce(tmp_path: Path) -> None:
    """Nonces are drawn from the OS many at a time; a fork must not hand the parent's unused
    ones to the child, which would seal with the nonce the parent uses next."""
    sealer = Sealer(RepositoryKey.generate().encryption_key)
    sealer.seal("a" * 64, b"j", b"{}")  # the parent has drawn nonces it has not used yet
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the nonce of its first blob, then leave at once
        os.write(write_end, sealer.seal("b" * 64, b"j", b"{}")[len(MAGIC) + 1 :][:NONCE_BYTES])
        os._exit(0)
    os.waitpid(pid, 0)
    child_nonce = os.read(read_end, NONCE_BYTES)
    parent_nonce = sealer.seal("b" * 64, b"j", b"{}")[len(MAGIC) + 1 :][:NONCE_BYTES]
    assert len(child_nonce) == NONCE_BYTES and child_nonce != parent_nonce
