"""The catalog: snapshots an operator can trust after partial failures, crashes and tampering."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.db.catalog import Catalog, KindResult, SnapshotKindView, SnapshotView, StagedObject
from agent.errors import JobConflict, NotFound

TENANT = "contoso"


def blob(text: str) -> str:
    """Blob ids are opaque 64-hex strings to the catalog."""
    return hashlib.sha256(text.encode()).hexdigest()


def put(kind: str, object_id: str, content: str = "v1") -> StagedObject:
    return StagedObject(
        kind, object_id, f"label {object_id}", "put", blob(f"{object_id}:{content}")
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.db"


@pytest.fixture
def catalog(db_path: Path) -> Iterator[Catalog]:
    cat = Catalog(f"sqlite:///{db_path}")
    cat.ensure_tenant(TENANT, "00000000-0000-0000-0000-0000000000aa")
    yield cat
    cat.close()


def start(catalog: Catalog, mode: str = "incremental", tenant: str = TENANT) -> int:
    return catalog.start_job(
        tenant, job_type="backup", mode=mode, scope="all", host="host-a", pid=os.getpid()
    )


def run(
    catalog: Catalog,
    staged: list[StagedObject],
    *,
    mode: str = "incremental",
    full: tuple[str, ...] = (),
    failed: tuple[str, ...] = (),
    links: dict[str, str] | None = None,
    kinds: tuple[str, ...] = (),
) -> SnapshotView:
    """One backup job as the job engine drives it."""
    job = start(catalog, mode)
    catalog.stage(job, staged)
    for kind in full:
        catalog.mark_full_listing(job, kind)
    for kind, link in (links or {}).items():
        catalog.stage_delta_link(job, kind, link)
    for kind in sorted({r.kind for r in staged} | set(full) | set(failed) | set(kinds)):
        status = "failed" if kind in failed else "succeeded"
        catalog.record_kind(job, KindResult(kind, status, mode, reason="boom" * (kind in failed)))
    snap = catalog.commit_snapshot(job)
    catalog.finish_job(job, "partial" if failed else "succeeded")
    return snap


def state(catalog: Catalog, seq: int, tenant: str = TENANT) -> dict[tuple[str, str], str]:
    return {(v.kind, v.object_id): v.blob_id for v in catalog.state(tenant, seq)}


def version_rows(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute("SELECT count(*) FROM object_version").fetchone()[0])


def kind_of(snap: SnapshotView, kind: str) -> SnapshotKindView:
    return next(k for k in snap.kinds if k.kind == kind)


def test_full_then_incremental_gives_the_right_state_at_each_seq(
    catalog: Catalog, db_path: Path
) -> None:
    users = [put("user", f"u{i}") for i in range(5)]
    groups = [put("group", f"g{i}") for i in range(3)]
    s1 = run(catalog, users + groups, mode="full", full=("user", "group"))
    assert (s1.seq, s1.object_count) == (1, 8)
    assert kind_of(s1, "user").added == 5

    # Incremental: one user edited, one added, one removed; the rest never mentioned.
    s2 = run(
        catalog,
        [
            put("user", "u1", "v2"),
            put("user", "u9"),
            StagedObject("user", "u2", "", "remove", None),
        ],
    )
    assert s2.seq == 2
    user = kind_of(s2, "user")
    assert (user.added, user.changed, user.removed, user.objects) == (1, 1, 1, 5)
    assert kind_of(s2, "group").status == "carried"  # not scanned in this job

    expected1 = {(r.kind, r.object_id): r.blob_id for r in users + groups}
    expected2 = dict(expected1)
    expected2[("user", "u1")] = blob("u1:v2")
    expected2[("user", "u9")] = blob("u9:v1")
    del expected2[("user", "u2")]
    assert state(catalog, 1) == expected1
    assert state(catalog, 2) == expected2
    assert [v.kind for v in catalog.state(TENANT, 2, "group")] == ["group"] * 3
    # state is ordered by kind, object id
    keys = [(v.kind, v.object_id) for v in catalog.state(TENANT, 2)]
    assert keys == sorted(keys)

    history = catalog.history(TENANT, "user", "u1")
    assert [(h.valid_from_seq, h.valid_to_seq) for h in history] == [(1, 2), (2, None)]
    assert catalog.current_blobs(TENANT, "user", ["u1", "u2", "nope"]) == {"u1": blob("u1:v2")}
    assert [s.seq for s in catalog.snapshots(TENANT)] == [2, 1]
    assert catalog.latest_snapshot(TENANT) == catalog.snapshot(s2.id) == s2
    assert catalog.job(s2.job_id).snapshot_id == s2.id
    assert version_rows(db_path) == 8 + 2  # one new row for the edit, one for the new user
    assert catalog.verify_chain() == []


def test_unchanged_objects_write_no_version_rows(catalog: Catalog, db_path: Path) -> None:
    users = [put("user", f"u{i}") for i in range(50)]
    run(catalog, users, mode="full", full=("user",))
    rows = version_rows(db_path)
    s2 = run(catalog, users, mode="full", full=("user",))
    assert version_rows(db_path) == rows
    user = kind_of(s2, "user")
    assert (user.added, user.changed, user.removed, user.objects) == (0, 0, 0, 50)
    assert state(catalog, 2) == state(catalog, 1)


def test_full_listing_removes_what_it_did_not_see(catalog: Catalog) -> None:
    run(catalog, [put("group", f"g{i}") for i in range(4)], mode="full", full=("group",))
    # g1 could not be read but still exists ("keep"); g3 is gone.
    s2 = run(
        catalog,
        [
            put("group", "g0"),
            put("group", "g2", "v2"),
            StagedObject("group", "g1", "", "keep", None),
        ],
        mode="full",
        full=("group",),
    )
    assert set(state(catalog, 2)) == {("group", "g0"), ("group", "g1"), ("group", "g2")}
    assert state(catalog, 2)[("group", "g1")] == blob("g1:v1")
    group = kind_of(s2, "group")
    assert (group.added, group.changed, group.removed) == (0, 1, 1)
    # Without a full-listing mark, unmentioned objects stay.
    run(catalog, [put("group", "g0")])
    assert len(state(catalog, 3)) == 3


def test_failed_kind_is_carried_forward_and_its_delta_link_not_advanced(catalog: Catalog) -> None:
    s1 = run(
        catalog,
        [put("user", "u1"), put("group", "g1")],
        mode="full",
        full=("user", "group"),
        links={"user": "link-u1", "group": "link-g1"},
    )
    # The group collector staged something, then failed: none of it may apply.
    s2 = run(
        catalog,
        [put("user", "u2"), put("group", "g1", "half-read")],
        full=("user", "group"),
        failed=("group",),
        links={"user": "link-u2", "group": "link-g2"},
    )
    after = state(catalog, 2)
    assert after[("group", "g1")] == blob("g1:v1")
    assert ("user", "u1") not in after and ("user", "u2") in after
    group, user = kind_of(s2, "group"), kind_of(s2, "user")
    assert (group.status, group.captured_seq, group.objects) == ("carried", s1.seq, 1)
    assert (user.status, user.captured_seq) == ("captured", 2)
    assert catalog.delta_link(TENANT, "group") == "link-g1"
    assert catalog.delta_link(TENANT, "user") == "link-u2"
    assert catalog.job(s2.job_id).kinds[0].reason == "boom"
    assert catalog.verify_chain() == []


def test_a_job_that_never_commits_leaves_nothing_visible(catalog: Catalog, db_path: Path) -> None:
    s1 = run(catalog, [put("user", "u1")], mode="full", full=("user",))
    job = start(catalog)
    catalog.stage(job, [put("user", "u1", "v2"), put("user", "u2")])
    catalog.mark_full_listing(job, "user")
    catalog.stage_delta_link(job, "user", "never")
    # u2 is new: its version was written with its batch, for the snapshot not yet committed
    assert catalog.staged_count(job, "user") == 1
    assert version_rows(db_path) == 2
    # The process dies here. The next agent start notices.
    assert catalog.interrupt_stale_jobs(
        host="host-a", is_alive=lambda pid: False, stale_after_s=3600
    ) == [job]
    assert catalog.staged_count(job, "user") == 0
    assert version_rows(db_path) == 1
    assert [s.id for s in catalog.snapshots(TENANT)] == [s1.id]
    assert state(catalog, 1) == {("user", "u1"): blob("u1:v1")}
    assert catalog.delta_link(TENANT, "user") is None
    view = catalog.job(job)
    assert view.status == "interrupted" and "no longer running" in (view.error or "")
    with pytest.raises(JobConflict):
        catalog.commit_snapshot(job)  # a late commit of the dead job is refused
    # ... and the next job starts and commits seq 2 normally.
    assert run(catalog, [put("user", "u3")]).seq == 2


def test_same_object_staged_twice_last_one_wins(catalog: Catalog) -> None:
    job = start(catalog, "full")
    catalog.stage(job, [put("user", "u1", "a"), put("user", "u1", "b")])
    catalog.stage(job, [put("user", "u1", "c")])
    assert catalog.staged_count(job, "user") == 1
    catalog.record_kind(job, KindResult("user", "succeeded", "full"))
    catalog.record_kind(job, KindResult("user", "succeeded", "full", succeeded=1))  # upsert
    snap = catalog.commit_snapshot(job)
    assert state(catalog, snap.seq) == {("user", "u1"): blob("u1:c")}
    assert [k.succeeded for k in catalog.job(job).kinds] == [1]


def test_one_running_job_per_tenant(catalog: Catalog, db_path: Path) -> None:
    job = start(catalog)
    with pytest.raises(JobConflict) as caught:
        start(catalog)
    assert f"job {job}" in caught.value.message and caught.value.fix
    # Another agent process on the same database is refused too (the guard is in the DB).
    other = Catalog(f"sqlite:///{db_path}")
    try:
        with pytest.raises(JobConflict):
            start(other)
        catalog.ensure_tenant("fabrikam", "tid-2")
        assert start(other, tenant="fabrikam") > job  # other tenants are not blocked
    finally:
        other.close()
    catalog.finish_job(job, "failed", error="stopped")
    assert start(catalog) > job
    with pytest.raises(NotFound):
        start(catalog, tenant="unknown")


def test_interrupt_stale_jobs_dead_pid_here_and_silent_agents_elsewhere(
    catalog: Catalog, db_path: Path
) -> None:
    catalog.ensure_tenant("t-live", "1")
    catalog.ensure_tenant("t-dead", "2")
    catalog.ensure_tenant("t-remote-silent", "3")
    catalog.ensure_tenant("t-remote-fresh", "4")
    live = catalog.start_job(
        "t-live", job_type="backup", mode="full", scope="s", host="here", pid=111
    )
    dead = catalog.start_job(
        "t-dead", job_type="backup", mode="full", scope="s", host="here", pid=222
    )
    silent = catalog.start_job(
        "t-remote-silent", job_type="backup", mode="full", scope="s", host="there", pid=222
    )
    fresh = catalog.start_job(
        "t-remote-fresh", job_type="backup", mode="full", scope="s", host="there", pid=333
    )
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "UPDATE job SET heartbeat_at = '2000-01-01 00:00:00.000000' WHERE id = ?", (silent,)
        )
    catalog.heartbeat(fresh)
    interrupted = catalog.interrupt_stale_jobs(
        host="here", is_alive=lambda pid: pid == 111, stale_after_s=900
    )
    assert sorted(interrupted) == sorted([dead, silent])
    statuses = {j.id: j.status for j in catalog.jobs()}
    assert statuses == {
        live: "running",
        dead: "interrupted",
        silent: "interrupted",
        fresh: "running",
    }
    assert "no heartbeat" in (catalog.job(silent).error or "")
    # The interrupted tenants can run again.
    assert catalog.start_job(
        "t-dead", job_type="backup", mode="full", scope="s", host="here", pid=os.getpid()
    )


def test_job_log_and_views(catalog: Catalog) -> None:
    job = start(catalog)
    catalog.log(job, "info", "started")
    catalog.log(job, "warning", "could not read", kind="user", object_id="u1")
    catalog.record_kind(job, KindResult("user", "partial", "incremental", succeeded=9, failed=1))
    catalog.finish_job(job, "partial", stats={"requests": 12})
    events = catalog.events(job)
    assert [(e.level, e.kind, e.object_id, e.message) for e in events] == [
        ("info", None, None, "started"),
        ("warning", "user", "u1", "could not read"),
    ]
    view = catalog.jobs(TENANT)[0]
    assert (view.status, view.stats, view.succeeded, view.failed) == (
        "partial",
        {"requests": 12},
        9,
        1,
    )
    assert view.finished_at is not None and view.finished_at.tzinfo is not None
    with pytest.raises(NotFound):
        catalog.job(999)
    with pytest.raises(NotFound):
        catalog.snapshot(999)


def test_verify_chain_detects_a_tampered_and_a_deleted_version_row(
    catalog: Catalog, db_path: Path
) -> None:
    run(catalog, [put("user", f"u{i}") for i in range(5)], mode="full", full=("user",))
    run(catalog, [put("user", "u1", "v2")])
    run(catalog, [put("user", "u7")])
    assert catalog.verify_chain() == []
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "UPDATE object_version SET blob_id = ? WHERE object_id = 'u3'", (blob("evil"),)
        )
    problems = catalog.verify_chain()
    assert len(problems) == 1 and "'contoso' snapshot #1" in problems[0]

    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "UPDATE object_version SET blob_id = ? WHERE object_id = 'u3'", (blob("u3:v1"),)
        )
        conn.execute("DELETE FROM object_version WHERE object_id = 'u7'")
    problems = catalog.verify_chain(TENANT)
    assert len(problems) == 1 and "snapshot #3" in problems[0]
    with sqlite3.connect(db_path) as conn:
        conn.execute("DELETE FROM snapshot WHERE seq = 2")
    assert any("#2 is missing" in p for p in catalog.verify_chain())


def test_commit_of_100k_staged_rows(catalog: Catalog) -> None:
    n = 100_000
    rows = [put("user", f"u{i:06d}") for i in range(n)]
    job = start(catalog, "full")
    for i in range(0, n, 2000):
        catalog.stage(job, rows[i : i + 2000])
    catalog.mark_full_listing(job, "user")
    catalog.record_kind(job, KindResult("user", "succeeded", "full", succeeded=n))
    s1 = catalog.commit_snapshot(job)
    assert s1.object_count == n and kind_of(s1, "user").added == n
    catalog.finish_job(job, "succeeded")

    # Second full pass: 1% changed, 1% gone, 1,000 new.
    job = start(catalog, "full")
    second = [
        put("user", r.object_id, "v2") if i % 100 == 0 else r
        for i, r in enumerate(rows)
        if i % 100 != 1
    ]
    second += [put("user", f"new{i}") for i in range(1000)]
    for i in range(0, len(second), 2000):
        catalog.stage(job, second[i : i + 2000])
    catalog.mark_full_listing(job, "user")
    catalog.record_kind(job, KindResult("user", "succeeded", "full"))
    s2 = catalog.commit_snapshot(job)
    user = kind_of(s2, "user")
    assert (user.added, user.changed, user.removed, user.objects) == (1000, 1000, 1000, n)
    current = state(catalog, 2)
    assert current == {(r.kind, r.object_id): r.blob_id for r in second}
    assert len(state(catalog, 1)) == n
    assert catalog.verify_chain() == []
    assert sum(1 for _ in catalog.blob_references()) == n + 2000


def test_start_job_is_race_safe_between_agents(catalog: Catalog, db_path: Path) -> None:
    # Eight "agents" (own engines, own connections) race for the same tenant at once.
    agents = [Catalog(f"sqlite:///{db_path}") for _ in range(8)]
    barrier = threading.Barrier(len(agents))
    outcomes: list[str] = []

    def race(agent: Catalog) -> None:
        barrier.wait()
        try:
            start(agent)
            outcomes.append("started")
        except JobConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=race, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for agent in agents:
        agent.close()
    assert sorted(outcomes) == ["conflict"] * 7 + ["started"]
    assert [j.status for j in catalog.jobs(TENANT)] == ["running"]
