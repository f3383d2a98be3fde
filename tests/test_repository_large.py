"""A large object (a tenant-wide group's member list: ~8 MB of text at 100,000 users) is
stored and read back in parts: the same blob, id and bytes as a whole put makes, but memory
holds a part of it, never the text, its compressed or its sealed form whole."""

from __future__ import annotations

import json
import os
import random
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.collect.scratch import GroupScratch
from agent.errors import IntegrityError, RepositoryError
from agent.store import repository as repository_module
from agent.store.keys import RepositoryKey
from agent.store.repository import STREAM_BYTES, Repository, canonical_json

DATA = Path(__file__).parent / "data"
USER = "#microsoft.graph.user"
MB = 1 << 20


def _members(count: int, seed: int = 0) -> list[str]:
    """Random object ids, as a tenant's are (they compress about as well as real ones)."""
    rand = random.Random(seed)
    return sorted(str(uuid.UUID(int=rand.getrandbits(128), version=4)) for _ in range(count))


def _membership(group_id: str, members: list[str]) -> Callable[[], Iterator[bytes]]:
    """The group's canonical JSON in parts of 2,000 members, as GroupScratch.membership_parts
    gives it. Made before it is stored, so what a put or a read allocates is measured alone."""
    parts = [f'{{"groupId":"{group_id}","members":['.encode()]
    for at in range(0, len(members), 2000):
        chunk = [{"@odata.type": USER, "id": m} for m in members[at : at + 2000]]
        parts.append((b"," if at else b"") + canonical_json({"l": chunk})[6:-2])
    parts.append(b"]}")
    return lambda: iter(parts)


def _whole(group_id: str, members: list[str]) -> bytes:
    return canonical_json(
        {"groupId": group_id, "members": [{"@odata.type": USER, "id": m} for m in members]}
    )


def _peak_while(action: Callable[[], object]) -> int:
    """Python-allocated memory at its peak during ``action`` above what was alive before
    (zstd's and cryptography's output buffers are Python bytes: traced too)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        action()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository.init(tmp_path / "repo", RepositoryKey.generate())


def test_an_object_stored_in_parts_is_the_blob_a_whole_put_makes(repo: Repository) -> None:
    members = _members(40_000)
    text = _whole("g-all", members)
    assert len(text) > 2 * STREAM_BYTES
    blob = repo.put_canonical_parts(_membership("g-all", members))
    assert blob == repo.blob_id(json.loads(text))
    assert repo.get_canonical(blob) == text  # read whole, as restore and verify read it
    assert repo.check_blob(blob) is None
    assert b"".join(repo.canonical_parts(blob)) == text
    # Dedupe: the same content again, in parts or whole, stores nothing more.
    count, size = repo.stats()
    assert repo.put_canonical_parts(_membership("g-all", members)) == blob
    assert repo.put_canonical(text) == blob
    assert repo.stats() == (count, size)
    # Small ones are stored whole, beside the large one, and everything survives a reopen.
    small = repo.put_canonical_parts(_membership("g-few", members[:3]))
    other = repo.put({"id": "after the large one"})
    repo.sync()
    repo.close()
    key_repo = Repository.open(repo.path, repo._key)
    assert key_repo.get_canonical(small) == _whole("g-few", members[:3])
    assert key_repo.get(other) == {"id": "after the large one"}
    assert b"".join(key_repo.canonical_parts(blob)) == text
    assert all(key_repo.check_blob(b) is None for b in key_repo.iter_blob_ids())


def test_memory_for_a_large_put_and_read_does_not_grow_with_the_object(
    repo: Repository,
) -> None:
    # A whole put held the text, its compressed and its sealed copies (and the pack buffer
    # a fourth), a whole read the sealed, compressed and text copies. In parts, memory is
    # set by a part and zstd's context: the same whether the list is 25,000 or 100,000
    # members (2 MB or 8 MB of text), under half a MB.
    peaks = {}
    for count in (25_000, 100_000):
        members = _members(count, seed=count)
        text_size = len(_whole("g", members))
        parts = _membership("g", members)
        stored: list[str] = []

        def put(parts: Callable[[], Iterator[bytes]] = parts, into: list[str] = stored) -> None:
            into.append(repo.put_canonical_parts(parts))

        peaks[count, "put"] = _peak_while(put)

        def read(blob: str = stored[0]) -> None:
            for _ in repo.canonical_parts(blob):
                pass

        peaks[count, "read"] = _peak_while(read)
        assert peaks[count, "put"] < text_size / 4 and peaks[count, "read"] < text_size / 4
    for step in ("put", "read"):
        assert peaks[100_000, step] < peaks[25_000, step] + MB / 8, peaks
    assert max(peaks.values()) < MB / 2, peaks


def test_a_membership_read_back_in_parts_merges_as_when_read_whole(
    repo: Repository, tmp_path: Path
) -> None:
    members = _members(30_000)
    stored = repo.put_canonical_parts(_membership("g-all", members))
    repo.sync()
    with GroupScratch(str(tmp_path)) as scratch:
        scratch.add_group(
            {
                "id": "g-all",
                "members@delta": [
                    {"@odata.type": USER, "id": members[5], "@removed": {"reason": "deleted"}},
                    {"@odata.type": USER, "id": "zz-new"},
                ],
            }
        )
        scratch.index()
        scratch.load_previous("g-all", lambda: repo.canonical_parts(stored))
        after = [m for m in members if m != members[5]] + ["zz-new"]
        new = repo.put_canonical_parts(lambda: scratch.membership_parts("g-all"))
        assert repo.get_canonical(new) == _whole("g-all", after)


def test_a_damaged_large_blob_fails_its_read_and_leaves_no_members_behind(
    repo: Repository, tmp_path: Path
) -> None:
    members = _members(30_000)
    blob = repo.put_canonical_parts(_membership("g-all", members))
    repo.sync()
    path, offset, length = repo.location(blob) or pytest.fail("not stored")
    with open(path, "r+b") as pack:  # one bit in the middle: still decompresses, but forged
        pack.seek(offset + length // 2)
        byte = pack.read(1)
        pack.seek(offset + length // 2)
        pack.write(bytes([byte[0] ^ 1]))
    with pytest.raises(IntegrityError, match=f"Blob {blob} is damaged"):
        b"".join(repo.canonical_parts(blob))
    assert repo.check_blob(blob) == "authentication failed"
    with GroupScratch(str(tmp_path)) as scratch:
        scratch.add_group({"id": "g-all", "members@delta": [{"@odata.type": USER, "id": "x"}]})
        scratch.index()
        with pytest.raises(IntegrityError):
            scratch.load_previous("g-all", lambda: repo.canonical_parts(blob))
        # Nothing of the unauthenticated list is merged into the next version.
        assert scratch.membership_json("g-all") == _whole("g-all", ["x"])


def test_a_put_that_fails_midway_stores_nothing_and_the_pack_stays_whole(
    repo: Repository,
) -> None:
    members = _members(30_000)
    before = repo.put({"id": "before"})
    calls = 0

    def failing() -> Iterator[bytes]:
        nonlocal calls
        calls += 1
        for number, part in enumerate(_membership("g", members)()):
            if calls == 2 and number == 8:  # the second reading, while it is being written
                raise OSError("scratch file went away")
            yield part

    with pytest.raises(OSError, match="went away"):
        repo.put_canonical_parts(failing)
    changed = [*members[:-1], "zz"]
    readings = iter([_membership("g", members), _membership("g", changed)])
    with pytest.raises(RepositoryError, match="changed while it was being stored"):
        repo.put_canonical_parts(lambda: next(readings)())
    blob = repo.blob_id(json.loads(_whole("g", members)))
    assert not repo.exists(blob)
    after = repo.put({"id": "after"})
    repo.sync()
    reopened = Repository.open(repo.path, repo._key)
    assert reopened.get(before) == {"id": "before"} and reopened.get(after) == {"id": "after"}
    assert reopened.stats()[0] == 2
    assert all(reopened.check_blob(b) is None for b in reopened.iter_blob_ids())
    assert reopened.recover_unsynced() == 0


@pytest.mark.parametrize("version", ["repository-v1", "repository-v2"])
def test_older_repositories_blobs_read_in_parts(
    tmp_path: Path, version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blobs of version 1 files and version 2 packs (zlib) read in parts as whole: with
    parts of 16 bytes, every blob of them takes the path a large one takes."""
    import shutil

    shutil.copytree(DATA / version, tmp_path / "repo")
    key = RepositoryKey.from_text((DATA / f"{version}.key").read_text())
    expected = json.loads((DATA / f"{version}.json").read_text())
    repo = Repository.open(tmp_path / "repo", key)
    monkeypatch.setattr(repository_module, "READ_BYTES", 16)
    for blob_id in expected["objects"]:
        parts = list(repo.canonical_parts(blob_id))
        assert len(parts) > 1 and b"".join(parts) == repo.get_canonical(blob_id)
    assert os.listdir(tmp_path / "repo" / "tmp") == []
