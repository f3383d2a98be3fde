"""Timing of the hot paths: staging + committing 100,000 objects, and repository put throughput.

    python bench/catalog_commit.py [--rows 100000] [--url sqlite:///…] [--blobs 5000]

Prints figures only; tests assert correctness, never time.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agent.db.catalog import Catalog, KindResult, StagedObject
from agent.store.keys import RepositoryKey
from agent.store.repository import Repository

BATCH = 2000


def _blob(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _job(catalog: Catalog, rows: list[StagedObject]) -> tuple[float, float]:
    job = catalog.start_job(
        "bench", job_type="backup", mode="full", scope="all", host="bench", pid=os.getpid()
    )
    started = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        catalog.stage(job, rows[i : i + BATCH])
    catalog.mark_full_listing(job, "user")
    catalog.record_kind(job, KindResult("user", "succeeded", "full", succeeded=len(rows)))
    staged = time.perf_counter()
    catalog.commit_snapshot(job)
    committed = time.perf_counter()
    catalog.finish_job(job, "succeeded")
    return staged - started, committed - staged


def bench_catalog(url: str, n: int) -> None:
    catalog = Catalog(url)
    catalog.ensure_tenant("bench", "tid")
    rows = [StagedObject("user", f"u{i:07d}", f"user {i}", "put", _blob(f"{i}")) for i in range(n)]
    stage_s, commit_s = _job(catalog, rows)
    print(f"first full  : stage {n:,} rows {stage_s:6.2f}s, commit {commit_s:6.2f}s")
    changed = [
        StagedObject(r.kind, r.object_id, r.label, "put", _blob(f"{i}x")) if i % 100 == 0 else r
        for i, r in enumerate(rows)
        if i % 100 != 1
    ]
    stage_s, commit_s = _job(catalog, changed)
    print(
        f"second full : stage {len(changed):,} rows {stage_s:6.2f}s, commit {commit_s:6.2f}s "
        "(1% changed, 1% removed)"
    )
    started = time.perf_counter()
    latest = catalog.latest_snapshot("bench")
    assert latest is not None
    count = sum(1 for _ in catalog.state("bench", latest.seq))
    print(f"state read  : {count:,} rows {time.perf_counter() - started:6.2f}s")
    started = time.perf_counter()
    problems = catalog.verify_chain()
    print(f"verify chain: {time.perf_counter() - started:6.2f}s, problems: {len(problems)}")
    catalog.close()


def bench_repository(path: Path, n: int, threads: int) -> None:
    repo = Repository.init(path, RepositoryKey.generate())
    objects = [
        {
            "id": f"{i:08d}-0000-4000-8000-000000000000",
            "displayName": f"User {i}",
            "userPrincipalName": f"user{i}@contoso.onmicrosoft.com",
            "jobTitle": "Engineer",
            "department": "Research",
            "accountEnabled": True,
            "proxyAddresses": [f"SMTP:user{i}@contoso.com", f"smtp:u{i}@contoso.onmicrosoft.com"],
        }
        for i in range(n)
    ]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(repo.put, objects))
    put_s = time.perf_counter() - started
    started = time.perf_counter()
    for obj in objects:
        repo.put(obj)
    dedupe_s = time.perf_counter() - started
    blobs, size = repo.stats()
    print(
        f"put         : {n / put_s:8,.0f} new blobs/s ({threads} threads, fsync each), "
        f"{size / blobs:.0f} B/blob on disk"
    )
    print(f"put (dedupe): {n / dedupe_s:8,.0f} blobs/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--blobs", type=int, default=5_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--url", default=None, help="catalog database (default: a temp SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_catalog(args.url or f"sqlite:///{tmp}/bench.db", args.rows)
        bench_repository(Path(tmp) / "repo", args.blobs, args.threads)


if __name__ == "__main__":
    main()
