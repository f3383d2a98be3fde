"""Repository check: structure, a re-hash of every blob, and the snapshot digest chain."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.db.catalog import Catalog
from agent.store.repository import Repository


@dataclass
class VerifyReport:
    blobs_checked: int = 0
    references: int = 0
    problems: list[str] = field(default_factory=list)
    unreferenced: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_repository(
    catalog: Catalog, repo: Repository, progress: Callable[[int], None] | None = None
) -> VerifyReport:
    report = VerifyReport()
    # Which objects each blob backs, so a damaged blob is named by what it holds.
    users_of: dict[str, list[str]] = defaultdict(list)
    for blob_id, tenant, kind, object_id, seq in catalog.blob_references():
        report.references += 1
        if len(users_of[blob_id]) < 3:
            users_of[blob_id].append(f"{tenant}/{kind}/{object_id} (from snapshot #{seq})")
    for blob_id, holders in sorted(users_of.items()):
        problem = repo.check_blob(blob_id)
        report.blobs_checked += 1
        if progress and report.blobs_checked % 500 == 0:
            progress(report.blobs_checked)
        if problem:
            report.problems.append(f"blob {blob_id}: {problem}; holds {', '.join(holders)}")
    referenced = set(users_of)
    for blob_id in repo.iter_blob_ids():
        if blob_id in referenced:
            continue
        report.unreferenced += 1  # left by an interrupted job: harmless, prune removes it
        problem = repo.check_blob(blob_id)
        report.blobs_checked += 1
        if problem:
            report.problems.append(f"blob {blob_id} (not referenced): {problem}")
    report.problems += catalog.verify_chain()
    return report
