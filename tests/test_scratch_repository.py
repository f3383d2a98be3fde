"""The scratch repository of live reads: same ids and sealing as the repository, one file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agent.errors import IntegrityError
from agent.store.keys import RepositoryKey
from agent.store.repository import Repository
from agent.store.scratch_repository import ScratchRepository


def test_equal_content_has_the_repository_blob_id_is_sealed_and_goes_away(tmp_path: Path) -> None:
    key = RepositoryKey.generate()
    repo = Repository.init(tmp_path / "repo", key)
    scratch = ScratchRepository(tmp_path, key)
    user = {"id": "u1", "userPrincipalName": "ada.lovelace@contoso.example"}
    with ThreadPoolExecutor(4) as pool:  # collectors put from parallel threads
        ids = set(pool.map(scratch.put, [user] * 8 + [{"id": f"u{i}"} for i in range(50)]))
    assert repo.put(user) in ids and len(ids) == 51
    assert scratch.get(repo.put(user)) == user
    assert b"ada.lovelace" not in scratch.path.read_bytes()  # sealed, not plaintext
    with pytest.raises(IntegrityError):
        scratch.get(repo.put({"id": "never stored"}))
    # With the repository as fallback, what was stored before reads through.
    stored = repo.put({"id": "u9", "key": "stored earlier"})
    reading = ScratchRepository(tmp_path, key, fallback=repo)
    assert reading.get(stored) == {"id": "u9", "key": "stored earlier"}
    reading.close()
    scratch.close()
    assert not scratch.path.exists() and list(tmp_path.glob("live-*")) == []
