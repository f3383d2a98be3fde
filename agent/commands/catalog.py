"""jobs list|show, snapshots list|show."""

from __future__ import annotations

from typing import Annotated

import typer

from agent.commands.common import (
    ConfigOpt,
    JsonOpt,
    console,
    jobs_app,
    print_json,
    runtime,
    snapshots_app,
    table,
)

TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t", help="Only this tenant.")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", help="How many, newest first.")]


@jobs_app.command("list")
def jobs_list(
    tenant: TenantOpt = None,
    limit: LimitOpt = 20,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List recent jobs with their per-kind counts."""
    jobs = runtime(config).catalog.jobs(tenant, limit)
    if json_out:
        print_json(jobs)
        return
    rows = []
    for j in jobs:
        ok = sum(k.succeeded for k in j.kinds)
        failed = sum(k.failed for k in j.kinds)
        skipped = sum(1 for k in j.kinds if k.status == "skipped")
        rows.append(
            [
                j.id,
                j.tenant,
                j.job_type,
                j.mode,
                j.status,
                j.started_at,
                j.finished_at,
                ok,
                failed,
                skipped,
                j.snapshot_id,
            ]
        )
    console.print(
        table(
            "Jobs",
            [
                "id",
                "tenant",
                "type",
                "mode",
                "status",
                "started",
                "finished",
                "succeeded",
                "failed",
                "kinds skipped",
                "snapshot",
            ],
            rows,
        )
    )


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one job: per-kind results and its log."""
    catalog = runtime(config).catalog
    job = catalog.job(job_id)
    events = catalog.events(job_id)
    if json_out:
        print_json({"job": job, "events": events})
        return
    console.print(
        f"Job {job.id} — {job.job_type} of {job.tenant} ({job.mode}, scope "
        f"{job.scope}): [bold]{job.status}[/]; started {job.started_at}, finished "
        f"{job.finished_at}; snapshot {job.snapshot_id}",
        highlight=False,
    )
    if job.error:
        console.print(f"[red]{job.error}[/]", highlight=False)
    console.print(
        table(
            "Kinds",
            ["kind", "status", "mode", "succeeded", "failed", "skipped", "time", "reason"],
            [
                [
                    k.kind,
                    k.status,
                    k.mode,
                    k.succeeded,
                    k.failed,
                    k.skipped,
                    f"{k.duration_s:.1f}s",
                    k.reason,
                ]
                for k in job.kinds
            ],
        )
    )
    console.print(
        table(
            "Log",
            ["time", "level", "kind", "message"],
            [[e.ts, e.level, e.kind, e.message] for e in events],
        )
    )


@snapshots_app.command("list")
def snapshots_list(
    tenant: TenantOpt = None,
    limit: LimitOpt = 50,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List complete snapshots with the objects present per kind."""
    snaps = runtime(config).catalog.snapshots(tenant, limit)
    if json_out:
        print_json(snaps)
        return
    rows = [
        [
            s.id,
            s.tenant,
            s.seq,
            s.mode,
            s.completed_at,
            s.object_count,
            ", ".join(f"{k.kind} {k.objects:,}" for k in s.kinds),
        ]
        for s in snaps
    ]
    console.print(
        table("Snapshots", ["id", "tenant", "#", "mode", "completed", "objects", "per kind"], rows)
    )


@snapshots_app.command("show")
def snapshots_show(
    snapshot_id: Annotated[int, typer.Argument(help="Snapshot id.")],
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one snapshot: per-kind objects present and changes since the previous one."""
    snap = runtime(config).catalog.snapshot(snapshot_id)
    if json_out:
        print_json(snap)
        return
    console.print(
        f"Snapshot {snap.id} of {snap.tenant} (#{snap.seq}, {snap.mode}), completed "
        f"{snap.completed_at} by job {snap.job_id}; digest {snap.digest}",
        highlight=False,
    )
    console.print(
        table(
            "Kinds",
            ["kind", "status", "captured in #", "objects", "added", "changed", "removed"],
            [
                [k.kind, k.status, k.captured_seq, k.objects, k.added, k.changed, k.removed]
                for k in snap.kinds
            ],
        )
    )
