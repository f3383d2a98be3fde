"""Pack files (repository format 2): crashes, version-1 repositories, writers side by side."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent.store.keys import RepositoryKey
from agent.store.packs import BUFFER_BYTES
from agent.store.repository import Repository

DATA = Path(__file__).parent / "data"
# Enough distinct objects that several MiB-sized buffers reach the pack before the "crash".
WRITER = """
import os, sys
from pathlib import Path
from agent.store.keys import RepositoryKey
from agent.store.repository import Repository

path, key, tag, count, sync = sys.argv[1:6]
repo = Repository.open(Path(path), RepositoryKey.from_text(key))
for i in range(int(count)):
    repo.put({"id": f"{tag}-{i}", "notes": os.urandom(600).hex()})
if sync == "sync":
    repo.sync()
    print("synced", flush=True)
else:
    os._exit(0)  # a crash: no sync, no flush of what is still buffered
"""


def write_in_process(path: Path, key: RepositoryKey, tag: str, count: int, sync: bool) -> None:
    args = [str(path), key.to_text(), tag, str(count), "sync" if sync else "crash"]
    done = subprocess.run(
        [sys.executable, "-c", WRITER, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def packs_of(path: Path) -> list[Path]:
    return sorted((path / "packs").glob("*.pack"))


def test_a_crash_mid_pack_keeps_earlier_snapshots_and_drops_the_torn_tail(tmp_path: Path) -> None:
    key = RepositoryKey.generate()
    repo = Repository.init(tmp_path / "repo", key)
    kept = {"id": "in an earlier snapshot"}
    kept_id = repo.put(kept)
    repo.sync()
    repo.close()

    # Another process writes ~4 MiB (so some of it reached the pack and the index) and dies
    # before sync(); then the disk loses the last part of what it wrote: a torn tail.
    write_in_process(tmp_path / "repo", key, "crashed", 3000, sync=False)
    crashed_pack = max(packs_of(tmp_path / "repo"), key=lambda p: p.stat().st_size)
    size = crashed_pack.stat().st_size
    assert size > 2 * BUFFER_BYTES
    with crashed_pack.open("r+b") as fh:
        fh.truncate(size - 1000)  # mid-record
    # A pack created but not yet begun when the process died: left alone, never an error.
    (tmp_path / "repo" / "packs" / ("0" * 32 + ".pack")).write_bytes(b"")

    reopened = Repository.open(tmp_path / "repo", key)
    assert reopened.get(kept_id) == kept
    # Every blob still indexed reads back and authenticates; the torn one is gone.
    remaining = list(reopened.iter_blob_ids())
    assert kept_id in remaining and 1 < len(remaining) < 3000
    assert all(reopened.check_blob(b) is None for b in remaining)
    assert crashed_pack.stat().st_size < size - 1000  # cut at the last whole record
    # Writing goes on in a new pack; the next backup stores the dropped blobs again.
    again = reopened.put({"id": "after the crash"})
    reopened.sync()
    assert Repository.open(tmp_path / "repo", key).get(again) == {"id": "after the crash"}


def test_a_live_writers_unsynced_pack_is_not_repaired_by_another_process(tmp_path: Path) -> None:
    key = RepositoryKey.generate()
    writer = Repository.init(tmp_path / "repo", key)
    written = [writer.put({"id": i, "notes": "x" * 900}) for i in range(2000)]
    assert writer.location(written[0]) is not None  # in the pack, not yet synced
    other = Repository.open(tmp_path / "repo", key)  # what a second agent process does
    assert other.recover_unsynced() == 0
    assert all(other.check_blob(b) is None for b in written[:500])
    writer.sync()
    assert all(other.get(b)["id"] == i for i, b in enumerate(written))


def test_the_index_is_rebuilt_from_the_packs_when_lost(tmp_path: Path) -> None:
    key = RepositoryKey.generate()
    repo = Repository.init(tmp_path / "repo", key)
    stored = {repo.put({"id": i}): {"id": i} for i in range(300)}
    image = repo.put_bytes(b"\x89PNG" + bytes(500))
    repo.sync()
    repo.close()
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (tmp_path / "repo" / name).unlink(missing_ok=True)
    reopened = Repository.open(tmp_path / "repo", key)
    assert all(reopened.get(b) == obj for b, obj in stored.items())
    assert reopened.get_bytes(image) == b"\x89PNG" + bytes(500)
    assert reopened.stats()[0] == 301


def test_a_version_1_repository_reads_and_upgrades_on_first_write(tmp_path: Path) -> None:
    """tests/data/repository-v1 was written by the agent before packs (one file per blob)."""
    shutil.copytree(DATA / "repository-v1", tmp_path / "repo")
    key = RepositoryKey.from_text((DATA / "repository-v1.key").read_text())
    expected = json.loads((DATA / "repository-v1.json").read_text())
    repo = Repository.open(tmp_path / "repo", key)
    assert repo.version == 1
    for blob_id, obj in expected["objects"].items():
        assert repo.get(blob_id) == obj and repo.check_blob(blob_id) is None
    for blob_id, data in expected["bytes"].items():
        assert repo.get_bytes(blob_id) == bytes.fromhex(data)
    assert sorted(repo.iter_blob_ids()) == sorted([*expected["objects"], *expected["bytes"]])
    assert repo.stats()[0] == 3
    # Reading changed nothing; a put of content it already holds writes nothing either.
    old_id, old_obj = next(iter(expected["objects"].items()))
    assert repo.put(old_obj) == old_id
    assert json.loads((tmp_path / "repo" / "format").read_text())["version"] == 1

    new_id = repo.put({"id": "written after the upgrade"})
    repo.sync()
    fmt = json.loads((tmp_path / "repo" / "format").read_text())
    assert fmt["version"] == 3 and fmt["loose_blobs"] is True
    assert len(packs_of(tmp_path / "repo")) == 1
    reopened = Repository.open(tmp_path / "repo", key)
    assert reopened.get(new_id) == {"id": "written after the upgrade"}
    assert reopened.get(old_id) == old_obj
    assert reopened.stats()[0] == 4
    assert all(reopened.check_blob(b) is None for b in reopened.iter_blob_ids())


def test_a_version_2_repository_reads_and_upgrades_on_first_write(tmp_path: Path) -> None:
    """tests/data/repository-v2 was written by the agent before zstd (packs of zlib blobs)."""
    shutil.copytree(DATA / "repository-v2", tmp_path / "repo")
    key = RepositoryKey.from_text((DATA / "repository-v2.key").read_text())
    expected = json.loads((DATA / "repository-v2.json").read_text())
    repo = Repository.open(tmp_path / "repo", key)
    assert repo.version == 2
    for blob_id, obj in expected["objects"].items():
        assert repo.get(blob_id) == obj and repo.check_blob(blob_id) is None
        assert repo.put(obj) == blob_id  # the same content keeps its id: nothing is stored
    for blob_id, data in expected["bytes"].items():
        assert repo.get_bytes(blob_id) == bytes.fromhex(data)
    repo.sync()
    assert json.loads((tmp_path / "repo" / "format").read_text())["version"] == 2
    assert repo.stats()[0] == 5 and len(packs_of(tmp_path / "repo")) == 1

    new_id = repo.put({"id": "written after the upgrade", "text": "zstd " * 50})
    repo.sync()
    fmt = json.loads((tmp_path / "repo" / "format").read_text())
    assert fmt["version"] == 3 and "loose_blobs" not in fmt
    reopened = Repository.open(tmp_path / "repo", key)
    assert reopened.get(new_id) == {"id": "written after the upgrade", "text": "zstd " * 50}
    assert all(reopened.get(b) == obj for b, obj in expected["objects"].items())
    assert reopened.stats()[0] == 6
    assert all(reopened.check_blob(b) is None for b in reopened.iter_blob_ids())


def test_a_blobs_header_is_authenticated(tmp_path: Path) -> None:
    key = RepositoryKey.generate()
    repo = Repository.init(tmp_path / "repo", key)
    blob = repo.put({"id": "x"})
    empty = repo.put_bytes(b"")
    repo.sync()
    assert repo.get_bytes(empty) == b""
    path, offset, _ = repo.location(blob) or pytest.fail("not stored")
    data = bytearray(path.read_bytes())
    data[offset + 4] = 1  # claims to be an older (zlib) blob
    path.write_bytes(bytes(data))
    assert repo.check_blob(blob) == "authentication failed"


def test_writer_processes_and_threads_side_by_side(tmp_path: Path) -> None:
    key = RepositoryKey.generate()
    repo = Repository.init(tmp_path / "repo", key)
    shared = [{"id": f"shared-{i}", "notes": "same in every writer"} for i in range(400)]
    mine: list[str] = []
    lock = threading.Lock()

    def thread_writer(n: int) -> None:
        ids = [repo.put(obj) for obj in shared]
        ids += [repo.put({"id": f"thread-{n}-{i}"}) for i in range(300)]
        with lock:
            mine.extend(ids)

    threads = [threading.Thread(target=thread_writer, args=(n,)) for n in range(8)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path / "repo"), key.to_text(), t, "1500", "sync"]
        )
        for t in ("p1", "p2")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    repo.sync()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]

    # 400 shared + 8 x 300 from threads + 2 x 1500 from processes, each stored once
    # (dedupe in one process; two processes may each store a copy, the index keeps one).
    reader = Repository.open(tmp_path / "repo", key)
    every = list(reader.iter_blob_ids())
    assert len(every) == len(set(every)) == 400 + 2400 + 3000
    assert set(mine) <= set(every)
    assert all(reader.check_blob(b) is None for b in every)
    assert len(packs_of(tmp_path / "repo")) == 3  # one per writer


def test_unknown_pack_version_bytes_are_never_trusted(tmp_path: Path) -> None:
    key = RepositoryKey.generate()
    repo = Repository.init(tmp_path / "repo", key)
    blob = repo.put({"id": "x"})
    repo.sync()
    path, offset, _ = repo.location(blob) or pytest.fail("not stored")
    data = bytearray(path.read_bytes())
    data[offset + 4] = 9  # the sealed blob's version byte
    path.write_bytes(bytes(data))
    assert repo.check_blob(blob) == "unknown blob version 9"
