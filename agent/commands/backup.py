"""backup, serve, verify, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.commands.common import (
    ConfigOpt,
    JsonOpt,
    app,
    console,
    kind_progress,
    print_json,
    runtime,
    table,
)
from agent.errors import IntegrityError
from agent.jobs.backup import BackupReport, run_backup
from agent.jobs.export import export_snapshot
from agent.jobs.verify import verify_repository
from agent.runtime import Runtime

# Exit code for a job that finished but not completely (some kinds failed or partial).
EXIT_PARTIAL = 10


def backup_with_progress(
    rt: Runtime, tenant: str, *, full: bool, scope: str | None, quiet: bool = False
) -> BackupReport:
    with kind_progress(tenant, quiet) as progress:
        return run_backup(rt, tenant, scope=scope, force_full=full, progress=progress)


def kind_table(report: BackupReport) -> list[list[object]]:
    changes = {k.kind: k for k in report.snapshot.kinds} if report.snapshot else {}
    rows: list[list[object]] = []
    for r in report.kinds:
        snap = changes.get(r.kind)
        delta = f"+{snap.added} ~{snap.changed} -{snap.removed}" if snap else ""
        rows.append(
            [
                r.kind,
                r.status,
                r.mode,
                r.succeeded,
                r.failed or "",
                delta,
                snap.objects if snap else "",
                f"{r.duration_s:.1f}s",
                r.reason,
            ]
        )
    return rows


# Short headers: with 40-odd kinds the table must stay readable in an 80-column terminal.
KIND_COLUMNS = ["kind", "status", "mode", "read", "failed", "changes", "total", "time", "note"]


@app.command()
def backup(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="Tenant name from the config.")],
    full: Annotated[
        bool, typer.Option("--full", help="Read everything, ignoring delta positions.")
    ] = False,
    scope: Annotated[
        str | None, typer.Option("--scope", help="One backup scope of the tenant (default: all).")
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run one backup job of a tenant now."""
    rt = runtime(config)
    report = backup_with_progress(rt, tenant, full=full, scope=scope, quiet=json_out)
    if json_out:
        print_json(report)
    else:
        snap = report.snapshot
        console.print(
            table(
                f"Job {report.job_id}: {report.mode} backup of {tenant} — {report.status} "
                f"in {report.duration_s:.1f}s"
                + (f", snapshot {snap.id} (#{snap.seq})" if snap else ""),
                KIND_COLUMNS,
                kind_table(report),
            )
        )
        # Job-wide warnings (e.g. a bridge host reached over plain HTTP) are not per kind:
        # say them here, not only in the job log.
        for event in rt.catalog.events(report.job_id):
            if event.level == "warning" and event.kind is None:
                console.print(f"[yellow]Warning:[/] {event.message}", highlight=False)
    if report.status != "succeeded":
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def serve(config: ConfigOpt = None) -> None:
    """Run the agent: back up every tenant scope on its schedule until stopped."""
    from agent.scheduler import AgentService

    rt = runtime(config)
    from agent.logs import setup_logging

    setup_logging(rt.config.agent.log_level, Path(rt.config.agent.log_file), console=True)
    AgentService(rt).serve()


@app.command()
def verify(config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Check the whole repository: structure, every blob re-hashed, the snapshot chain."""
    rt = runtime(config)
    report = verify_repository(rt.catalog, rt.repository)
    if json_out:
        print_json(
            {
                "ok": report.ok,
                "blobs_checked": report.blobs_checked,
                "references": report.references,
                "unreferenced": report.unreferenced,
                "problems": report.problems,
            }
        )
    else:
        for problem in report.problems:
            console.print(f"[red]DAMAGED[/] {problem}", highlight=False)
        console.print(
            f"Checked {report.blobs_checked:,} blobs ({report.references:,} object "
            f"versions); {report.unreferenced:,} unreferenced."
        )
    if not report.ok:
        raise IntegrityError(
            f"The repository has {len(report.problems)} problem(s), listed above.",
            "Restore the named blobs from a copy of the repository if you keep one; the "
            "objects they hold will be captured again by the next full backup "
            "(entra-backup backup --tenant NAME --full).",
        )
    if not json_out:
        console.print("[green]Repository OK.[/]")


@app.command()
def export(
    snapshot: Annotated[int, typer.Argument(help="Snapshot id (see 'snapshots list').")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")],
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write a snapshot as readable JSON files: one folder per kind, one file per object."""
    rt = runtime(config)
    report = export_snapshot(rt.catalog, rt.repository, snapshot, out)
    if json_out:
        print_json(report)
    else:
        console.print(
            f"Wrote {report.objects:,} objects to {report.out} "
            f"({', '.join(f'{k}: {v:,}' for k, v in report.kinds.items())}). "
            "These files are not encrypted."
        )
