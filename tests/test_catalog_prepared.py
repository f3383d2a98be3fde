"""Kinds prepared while the job still runs (a collector finished early): invisible until the
commit, gone without a trace when the job dies, and committing exactly the snapshot a job that
prepared nothing commits."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.db.catalog import Catalog, KindResult, SnapshotView, StagedObject
from agent.errors import JobConflict
from tests.test_catalog import TENANT, blob, catalog, db_path, put, start, state, version_rows

__all__ = ["catalog", "db_path"]  # fixtures


def first_snapshot(catalog: Catalog) -> SnapshotView:
    job = start(catalog, "full")
    catalog.stage(
        job,
        [put("user", f"u{i}") for i in range(6)]
        + [put("group", f"g{i}") for i in range(3)]
        + [put("device", "d1")],
    )
    for kind in ("user", "group", "device"):
        catalog.mark_full_listing(job, kind)
        catalog.record_kind(job, KindResult(kind, "succeeded", "full"))
    catalog.stage_delta_link(job, "user", "link-1")
    snap = catalog.commit_snapshot(job)
    catalog.finish_job(job, "succeeded")
    return snap


def second_job(catalog: Catalog, prepare: tuple[str, ...]) -> SnapshotView:
    """A full job that edits, adds, removes (absent from the full listing), repeats an object
    (the last row wins), re-reads unchanged ones, and fails one kind; ``prepare``: the kinds
    prepared before the commit, one collector at a time."""
    job = start(catalog, "full")
    catalog.stage(
        job,
        [
            put("user", "u0"),  # unchanged
            put("user", "u1", "v2"),  # edited
            put("user", "u7"),  # new
            StagedObject("user", "u2", "", "remove", None),
            put("user", "u3", "x"),
            StagedObject("user", "u4", "", "keep", None),  # unreadable: carried
        ],
    )
    catalog.stage(job, [put("user", "u3", "v2")])  # staged again: this one wins
    # u5 is not in the listing: removed. Groups: g1 edited, g0 and g2 gone.
    catalog.stage(job, [put("group", "g1", "v2"), put("device", "d2")])
    catalog.mark_full_listing(job, "user")
    catalog.mark_full_listing(job, "group")
    catalog.stage_delta_link(job, "user", "link-2")
    results = {
        "user": KindResult("user", "partial", "full", succeeded=4, failed=1),
        "group": KindResult("group", "succeeded", "full", succeeded=1),
        "device": KindResult("device", "failed", "full", reason="boom"),
    }
    for kind in prepare:
        catalog.record_kind(job, results[kind])
        catalog.prepare_kinds(job, [kind] if results[kind].status != "failed" else [])
    for result in results.values():
        catalog.record_kind(job, result)
    snap = catalog.commit_snapshot(job)
    catalog.finish_job(job, "partial")
    return snap


@pytest.mark.parametrize("prepare", [("user",), ("group", "user"), ("device", "group", "user")])
def test_prepared_kinds_commit_the_same_snapshot_as_a_commit_alone(
    tmp_path: Path, prepare: tuple[str, ...]
) -> None:
    snaps = []
    for name, early in (("alone", ()), ("prepared", prepare)):
        cat = Catalog(f"sqlite:///{tmp_path / name}.db")
        cat.ensure_tenant(TENANT, "00000000-0000-0000-0000-0000000000aa")
        first_snapshot(cat)
        snap = second_job(cat, early)
        snaps.append((snap, state(cat, 2), cat.history(TENANT, "user", "u1")))
        assert cat.verify_chain() == []
        assert cat.delta_link(TENANT, "user") == "link-2"
        cat.close()
    (alone, alone_state, alone_history), (prepared, prepared_state, prepared_history) = snaps
    assert prepared.digest == alone.digest
    assert prepared.kinds == alone.kinds
    assert prepared.object_count == alone.object_count
    assert prepared_state == alone_state
    assert prepared_history == alone_history
    user = next(k for k in prepared.kinds if k.kind == "user")
    assert (user.objects, user.added, user.changed, user.removed) == (5, 1, 2, 2)
    assert next(k for k in prepared.kinds if k.kind == "device").status == "carried"
    assert alone_state[("user", "u3")] == blob("u3:v2")
    assert ("user", "u4") in alone_state and ("user", "u5") not in alone_state


def test_a_prepared_kind_is_invisible_until_the_commit(catalog: Catalog, db_path: Path) -> None:
    first = first_snapshot(catalog)
    before = state(catalog, first.seq)
    job = start(catalog)
    catalog.stage(job, [put("user", "u1", "v2"), StagedObject("user", "u2", "", "remove", None)])
    catalog.record_kind(job, KindResult("user", "succeeded", "incremental"))
    catalog.prepare_kinds(job, ["user"])

    assert [s.id for s in catalog.snapshots(TENANT)] == [first.id]
    assert state(catalog, first.seq) == before
    history = catalog.history(TENANT, "user", "u1")
    assert [(h.valid_from_seq, h.valid_to_seq) for h in history] == [(1, None)]
    assert catalog.verify_chain() == []  # a running job's prepared versions are no damage
    assert catalog.delta_link(TENANT, "user") == "link-1"

    snap = catalog.commit_snapshot(job)
    history = catalog.history(TENANT, "user", "u1")
    assert [(h.valid_from_seq, h.valid_to_seq) for h in history] == [(1, 2), (2, None)]
    assert ("user", "u2") not in state(catalog, snap.seq)
    assert state(catalog, first.seq) == before


@pytest.mark.parametrize("how", ["killed", "cancelled"])
def test_a_job_that_dies_after_preparing_leaves_no_trace(
    catalog: Catalog, db_path: Path, how: str
) -> None:
    first = first_snapshot(catalog)
    before = state(catalog, first.seq)
    rows = version_rows(db_path)
    job = start(catalog, "full")
    catalog.stage(job, [put("user", "u1", "v2"), put("user", "u9"), put("group", "g1", "v2")])
    catalog.mark_full_listing(job, "user")  # u0, u2…u5 absent: closed by the prepare
    for kind in ("user", "group"):
        catalog.record_kind(job, KindResult(kind, "succeeded", "full"))
    catalog.prepare_kinds(job, ["user"])
    assert version_rows(db_path) == rows + 2

    if how == "killed":  # the process dies; the next agent start notices
        assert catalog.interrupt_stale_jobs(
            host="host-a", is_alive=lambda pid: False, stale_after_s=3600
        ) == [job]
    else:
        catalog.discard_staging(job)
        catalog.finish_job(job, "interrupted")
    assert version_rows(db_path) == rows
    assert state(catalog, first.seq) == before
    assert catalog.current_blobs(TENANT, "user", ["u1", "u2", "u9"]) == {
        "u1": blob("u1:v1"),
        "u2": blob("u2:v1"),
    }
    assert [(h.valid_from_seq, h.valid_to_seq) for h in catalog.history(TENANT, "user", "u2")] == [
        (1, None)
    ]
    assert catalog.verify_chain() == []
    with pytest.raises(JobConflict):
        catalog.prepare_kinds(job, ["group"])  # a late prepare of the dead job is refused
    with pytest.raises(JobConflict):
        catalog.commit_snapshot(job)

    # The next job commits seq 2 from the first snapshot, as if the dead one never ran.
    nxt = start(catalog)
    catalog.stage(nxt, [put("user", "u9")])
    catalog.record_kind(nxt, KindResult("user", "succeeded", "incremental"))
    catalog.prepare_kinds(nxt, ["user"])
    snap = catalog.commit_snapshot(nxt)
    assert snap.seq == 2
    assert state(catalog, 2) == {**before, ("user", "u9"): blob("u9:v1")}
    user = next(k for k in snap.kinds if k.kind == "user")
    assert (user.objects, user.added, user.changed, user.removed) == (7, 1, 0, 0)
    assert catalog.verify_chain() == []


def test_objects_new_to_the_catalog_restaged_or_failed_end_as_their_last_row_says(
    catalog: Catalog, db_path: Path
) -> None:
    """New objects are written with their batch; a later row for one of them still wins, and
    a kind that fails keeps none of them."""
    first = first_snapshot(catalog)
    job = start(catalog, "full")
    catalog.stage(job, [put("user", "n1"), put("user", "n2"), put("user", "n3")])
    catalog.stage(job, [StagedObject("user", "n4", "", "remove", None), put("device", "d9")])
    catalog.stage(
        job,
        [
            put("user", "n1", "v2"),  # new, then changed within the job
            StagedObject("user", "n2", "", "remove", None),  # new, then gone
            StagedObject("user", "n3", "", "keep", None),  # new, then unreadable
            put("user", "n4"),  # removed first (unknown then), then put
        ],
    )
    catalog.stage(job, [put("group", "g7")])
    catalog.record_kind(job, KindResult("user", "partial", "full", failed=1))
    catalog.record_kind(job, KindResult("group", "succeeded", "full"))
    catalog.record_kind(job, KindResult("device", "failed", "full", reason="boom"))
    catalog.prepare_kinds(job, ["user"])
    snap = catalog.commit_snapshot(job)

    after = state(catalog, snap.seq)
    users = {oid: b for (kind, oid), b in after.items() if kind == "user" and oid.startswith("n")}
    # n3: its only version would be the early one, and a keep carries what the last snapshot
    # had — nothing — so it has none
    assert users == {"n1": blob("n1:v2"), "n4": blob("n4:v1")}
    assert ("group", "g7") in after
    assert ("device", "d9") not in after  # its kind failed: carried as it was
    assert next(k for k in snap.kinds if k.kind == "device").status == "carried"
    user = next(k for k in snap.kinds if k.kind == "user")
    assert (user.objects, user.added, user.changed, user.removed) == (8, 2, 0, 0)
    assert state(catalog, first.seq) == {
        k: v for k, v in after.items() if k[1] not in ("n1", "n4", "g7")
    }
    assert catalog.verify_chain() == []  # the stored change lines are the versions' own


def test_a_compare_job_stages_without_writing_versions(catalog: Catalog, db_path: Path) -> None:
    first_snapshot(catalog)
    rows = version_rows(db_path)
    job = catalog.start_job(
        TENANT, job_type="compare", mode="full", scope="all", host="host-a", pid=1
    )
    catalog.stage(job, [put("user", "n1"), put("user", "n2")])
    assert catalog.staged_count(job, "user") == 2
    assert version_rows(db_path) == rows
    catalog.discard_staging(job)
    assert version_rows(db_path) == rows


def test_a_late_discard_of_a_job_found_dead_leaves_the_next_job_alone(catalog: Catalog) -> None:
    """An agent that lost its job (its heartbeat went stale, another agent took over) and
    then fails discards only its own staging: the new job's early versions stay."""
    first_snapshot(catalog)
    old = start(catalog, "full")
    catalog.stage(old, [put("user", "n1")])
    assert catalog.interrupt_stale_jobs(
        host="host-a", is_alive=lambda pid: False, stale_after_s=3600
    ) == [old]
    new = start(catalog, "full")
    catalog.stage(new, [put("user", "n2")])  # new to the catalog: written with its batch
    catalog.discard_staging(old)  # the old agent's error path, late
    catalog.record_kind(new, KindResult("user", "succeeded", "incremental"))
    snap = catalog.commit_snapshot(new)
    assert state(catalog, snap.seq)[("user", "n2")] == blob("n2:v1")
    assert ("user", "n1") not in state(catalog, snap.seq)
    assert catalog.verify_chain() == []
