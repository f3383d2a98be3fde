"""The blob repository: what an operator relies on when the disk, the key or a crash bites."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from agent.errors import IntegrityError, RepositoryError
from agent.store.keys import RepositoryKey
from agent.store.repository import Repository, canonical_json

UPN = "adele.vance@contoso.onmicrosoft.com"
LONG = "Conditional access: require compliant device for finance admins " * 4
USER = {
    "id": "5a1f6c2e-0000-4000-8000-000000000001",
    "userPrincipalName": UPN,
    "displayName": "Adele Vance",
    "notes": LONG,
    "jobTitle": "Café manager",  # non-ASCII survives the round trip
}


@pytest.fixture
def key() -> RepositoryKey:
    return RepositoryKey.generate()


@pytest.fixture
def repo(tmp_path: Path, key: RepositoryKey) -> Repository:
    return Repository.init(tmp_path / "repo", key)


def repository_files(repo: Repository) -> list[Path]:
    repo.sync()
    return [p for p in repo.path.rglob("*") if p.is_file()]


def sealed_region(repo: Repository, blob_id: str) -> tuple[Path, int, int]:
    where = repo.location(blob_id)
    assert where is not None
    return where


def test_roundtrip_json_and_bytes(repo: Repository) -> None:
    blob_id = repo.put(USER)
    assert repo.get(blob_id) == USER
    image = bytes(range(256)) * 10
    image_id = repo.put_bytes(image)
    assert repo.get_bytes(image_id) == image
    assert repo.exists(blob_id) and repo.exists(image_id)
    assert sorted(repo.iter_blob_ids()) == sorted([blob_id, image_id])
    # A binary blob is never handed back as JSON (nor the other way round).
    with pytest.raises(IntegrityError):
        repo.get(image_id)
    with pytest.raises(IntegrityError):
        repo.get_bytes(blob_id)


def test_reopen_with_the_same_key_reads_everything(tmp_path: Path, key: RepositoryKey) -> None:
    blob_id = Repository.init(tmp_path / "repo", key).put(USER)
    again = Repository.open(tmp_path / "repo", RepositoryKey.from_text(key.to_text()))
    assert again.get(blob_id) == USER


def test_same_object_twice_is_stored_once(repo: Repository) -> None:
    first = repo.put(USER)
    count, size = repo.stats()
    # Key order does not matter: canonical JSON makes it the same blob.
    second = repo.put(dict(reversed(list(USER.items()))))
    assert first == second
    assert repo.stats() == (count, size) == (1, size)
    repo.sync()
    assert repo.stats() == (count, size)  # nothing was written for the second put


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'.encode()


def test_blob_files_hold_no_plaintext(repo: Repository) -> None:
    repo.put(USER)
    repo.put_bytes(LONG.encode())
    for path in repository_files(repo):  # packs, their index, the format file
        data = path.read_bytes()
        assert UPN.encode() not in data
        assert LONG[:40].encode() not in data
        assert b"Adele" not in data
        if sys.platform != "win32":  # and only the agent's account may read them
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_blob_id_reveals_nothing_without_the_key(tmp_path: Path) -> None:
    a = Repository.init(tmp_path / "a", RepositoryKey.generate())
    b = Repository.init(tmp_path / "b", RepositoryKey.generate())
    import hashlib

    assert a.put(USER) != b.put(USER)
    assert a.put(USER) != hashlib.sha256(canonical_json(USER)).hexdigest()


def test_any_flipped_byte_is_detected_by_check_and_get(repo: Repository) -> None:
    """A pack tampered with anywhere inside a blob's bytes fails that blob's check."""
    before = repo.put({"id": "stored before"})
    blob_id = repo.put(USER)
    after = repo.put({"id": "stored after"})
    path, start, length = sealed_region(repo, blob_id)
    original = path.read_bytes()
    for offset in range(start, start + length):
        damaged = bytearray(original)
        damaged[offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        assert repo.check_blob(blob_id) is not None, f"flip at byte {offset} went unnoticed"
        assert repo.check_blob(before) is None and repo.check_blob(after) is None
    path.write_bytes(original)
    assert repo.check_blob(blob_id) is None

    damaged = bytearray(original)
    damaged[start + length // 2] ^= 0x40
    path.write_bytes(bytes(damaged))
    assert repo.check_blob(blob_id) == "authentication failed"
    with pytest.raises(IntegrityError) as caught:
        repo.get(blob_id)
    assert blob_id in str(caught.value)


def test_missing_truncated_and_swapped_blobs_are_reported(
    repo: Repository, key: RepositoryKey
) -> None:
    a = repo.put({"id": "a", "displayName": "Adele"})
    b = repo.put({"id": "b", "displayName": "Bruno"})  # sealed to the same length as a
    pack, start_a, length = sealed_region(repo, a)
    _, start_b, length_b = sealed_region(repo, b)
    assert length == length_b
    data = bytearray(pack.read_bytes())
    # Bytes copied over another id's fail: the id is bound into the encryption.
    data[start_b : start_b + length] = data[start_a : start_a + length]
    pack.write_bytes(bytes(data))
    assert repo.check_blob(b) == "authentication failed"
    assert repo.check_blob(a) is None
    pack.write_bytes(bytes(data[: start_b + 20]))
    assert repo.check_blob(b) == "truncated"
    pack.unlink()
    fresh = Repository.open(repo.path, key)
    assert fresh.check_blob(a) == "missing"
    assert not repo.exists("0" * 64)
    with pytest.raises(IntegrityError, match=a):
        fresh.get(a)


def test_wrong_key_is_refused_clearly(tmp_path: Path, repo: Repository) -> None:
    with pytest.raises(RepositoryError) as caught:
        Repository.open(repo.path, RepositoryKey.generate())
    assert "key does not open" in caught.value.message
    assert caught.value.fix


def test_missing_repository_says_to_run_init(tmp_path: Path, key: RepositoryKey) -> None:
    with pytest.raises(RepositoryError) as caught:
        Repository.open(tmp_path / "nowhere", key)
    assert "entra-backup init" in caught.value.fix


def test_unknown_format_version_is_refused(repo: Repository, key: RepositoryKey) -> None:
    fmt_path = repo.path / "format"
    fmt = json.loads(fmt_path.read_text())
    fmt["version"] = 4
    fmt_path.write_text(json.dumps(fmt))
    with pytest.raises(RepositoryError, match="format version 4"):
        Repository.open(repo.path, key)


def test_init_refuses_an_existing_repository(repo: Repository, key: RepositoryKey) -> None:
    with pytest.raises(RepositoryError, match="already exists"):
        Repository.init(repo.path, key)


def test_crash_leftover_temp_file_is_not_a_blob_and_is_cleaned(
    repo: Repository, key: RepositoryKey
) -> None:
    blob_id = repo.put(USER)
    # What a crash between write and rename leaves: a partial file in tmp/.
    leftover = repo.path / "tmp" / f"{blob_id[:16]}.abc123.tmp"
    leftover.write_bytes(b"EBRB\x01partial")
    assert list(repo.iter_blob_ids()) == [blob_id]
    assert repo.stats()[0] == 1
    assert repo.clean_tmp() == 1
    assert not leftover.exists()
    # Opening the repository cleans old leftovers too, but never a fresh (in-flight) one.
    leftover.write_bytes(b"partial")
    Repository.open(repo.path, key)
    assert leftover.exists()
    old = 2 * 24 * 3600
    os.utime(leftover, (leftover.stat().st_atime - old, leftover.stat().st_mtime - old))
    Repository.open(repo.path, key)
    assert not leftover.exists()


def test_concurrent_puts_from_threads(repo: Repository) -> None:
    objects = [{"id": str(i), "userPrincipalName": f"user{i}@contoso.com"} for i in range(200)]
    ids: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        # every thread writes every object: same ids, no torn files, no errors
        mine = [repo.put(obj) for obj in objects]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == len(objects)
    assert repo.stats()[0] == len(objects)
    assert all(repo.check_blob(b) is None for b in set(ids))
    repo.sync()  # the unsynced marker goes once the blobs are durable
    assert list((repo.path / "tmp").iterdir()) == []


def test_key_text_roundtrip_and_malformed_keys(key: RepositoryKey) -> None:
    text = key.to_text()
    assert text.startswith("entra-backup-key-v1:")
    assert RepositoryKey.from_text(text + "\n") == key
    assert "redacted" in repr(key) and text.split(":")[1] not in repr(key)
    for bad in ("", "not-a-key", "entra-backup-key-v1:!!!", "entra-backup-key-v1:AAAA"):
        with pytest.raises(RepositoryError) as caught:
            RepositoryKey.from_text(bad)
        assert caught.value.fix
    assert key.encryption_key != key.mac_key != key.material


def test_key_file_is_owner_only_and_never_overwritten(tmp_path: Path, key: RepositoryKey) -> None:
    path = tmp_path / "repository.key"
    key.write_key_file(path)
    assert RepositoryKey.from_text(path.read_text()) == key
    if sys.platform != "win32":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(RepositoryError, match="already exists"):
        RepositoryKey.generate().write_key_file(path)
    assert RepositoryKey.from_text(path.read_text()) == key


def test_objects_of_every_size_read_back_and_verify(repo: Repository, key: RepositoryKey) -> None:
    """Objects from empty to larger than zstd's block each read back whole, pass the
    integrity check and are stored compressed."""
    sizes = (0, 10, 300, 5_000, 40_000, 300_000)
    stored = {}
    for size in sizes:
        obj = {"id": f"obj-{size}", "notes": (LONG * (size // len(LONG) + 1))[:size]}
        stored[repo.put(obj)] = obj
    picture = os.urandom(70_000)  # incompressible bytes
    picture_id = repo.put_bytes(picture)
    repo.sync()  # what a backup does before it commits: then any process reads them
    reopened = Repository.open(repo.path, key)
    for blob_id, obj in stored.items():
        assert reopened.get(blob_id) == obj
        assert reopened.check_blob(blob_id) is None
    assert reopened.get_bytes(picture_id) == picture
    biggest = max(sealed_region(repo, blob_id)[2] for blob_id in stored)
    assert biggest < 300_000 // 10
