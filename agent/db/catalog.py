"""Catalog: jobs, job log, per-kind results, staging, snapshot commit, state queries, verify.

A job stages rows as it reads; ``commit_snapshot`` turns them into object versions, delta links
and a visible snapshot in one transaction. Until then nothing of the job is visible, so a job
that dies leaves only staging rows.

One class, one module per job: job records (jobs.py), staging (staging.py), snapshot commit
and reads (snapshots.py), the digest chain (chain.py), object state and differences
(state.py); views (views.py) and the engine, tables and SQL helpers (engine.py). Import from
here: ``agent.db.catalog`` is the catalog's public face.
"""

from __future__ import annotations

from agent.db.chain import Chain
from agent.db.jobs import JobRecords
from agent.db.snapshots import Snapshots
from agent.db.staging import Staging
from agent.db.state import ObjectState
from agent.db.views import (
    ACTIONS,
    JOB_STATUSES,
    JOB_TYPES,
    KIND_STATUSES,
    MODES,
    EventView,
    JobView,
    KindResult,
    SnapshotKindView,
    SnapshotView,
    StagedObject,
    VersionPair,
    VersionView,
)

__all__ = [
    "ACTIONS",
    "JOB_STATUSES",
    "JOB_TYPES",
    "KIND_STATUSES",
    "MODES",
    "Catalog",
    "EventView",
    "JobView",
    "KindResult",
    "SnapshotKindView",
    "SnapshotView",
    "StagedObject",
    "VersionPair",
    "VersionView",
]


class Catalog(JobRecords, Staging, Snapshots, Chain, ObjectState):
    """The catalog database of one agent (shared by agents pointing at the same database)."""
