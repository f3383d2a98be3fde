"""demo, and the built-in tenant simulator run on its own (the CLI's demo wiring)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.commands.backup import KIND_COLUMNS, backup_with_progress, kind_table
from agent.commands.common import app, console, table
from agent.jobs.backup import BackupReport
from agent.runtime import Runtime

simulator_app = typer.Typer(help="The built-in tenant simulator.", no_args_is_help=True)
app.add_typer(simulator_app, name="simulator")


@simulator_app.command("serve")
def simulator_serve(
    state: Annotated[
        Path,
        typer.Option(
            "--state", help="Folder for the simulator's state, CA certificate and credentials."
        ),
    ],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = any free port).")] = 8443,
    tenant: Annotated[str, typer.Option(help="Tenant name.")] = "contoso",
    users: Annotated[int, typer.Option(help="Users to generate for a new tenant.")] = 2000,
    groups: Annotated[int, typer.Option(help="Groups to generate for a new tenant.")] = 300,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 1,
    service_account: Annotated[
        bool,
        typer.Option(
            help="Give the tenant a service account profile (admin portal API); its password "
            "goes to a file named in tenants.json."
        ),
    ] = True,
) -> None:
    """Run the tenant simulator on loopback HTTPS until Ctrl-C (state saved on exit)."""
    from agent.simulator.service import TenantSpec, serve

    console.print(
        f"Simulator state in {state}; CA certificate and tenant details are written "
        "there (tenants.json). Ctrl-C to stop."
    )
    serve(
        state,
        "127.0.0.1",
        port,
        [
            TenantSpec(
                name=tenant,
                seed=seed,
                users=users,
                groups=groups,
                service_account=service_account,
            )
        ],
    )


@app.command()
def demo(
    dir: Annotated[
        Path,
        typer.Option(
            "--dir", help="Folder for the demo's config, database, repository and simulator."
        ),
    ] = Path("demo-data"),
    users: Annotated[int, typer.Option(help="Users in the simulated tenant.")] = 2000,
    groups: Annotated[int, typer.Option(help="Groups in the simulated tenant.")] = 300,
    churn: Annotated[
        float, typer.Option(help="Fraction of objects changed between the two backups.")
    ] = 0.02,
) -> None:
    """Back up a simulated tenant, change it, back it up again, and summarise."""
    from agent.demo import run_demo

    console.print(f"Starting the tenant simulator with {users:,} users and {groups:,} groups…")

    def backup(rt: Runtime, tenant: str, full: bool) -> BackupReport:
        console.print(f"[bold]{'Full' if full else 'Incremental'} backup[/] of {tenant}…")
        return backup_with_progress(rt, tenant, full=full, scope=None)

    result = run_demo(dir, users=users, groups=groups, churn=churn, backup=backup)
    for title, report, size in (
        ("Full backup", result.full, result.repo_bytes_after_full),
        ("Incremental backup", result.incremental, result.repo_bytes_after_incremental),
    ):
        objects = sum(k.succeeded for k in report.kinds)
        g = report.graph
        console.print(
            table(
                f"{title}: job {report.job_id}, {report.status}, {report.duration_s:.1f}s, "
                f"{objects:,} objects read ({objects / max(report.duration_s, 1e-6):,.0f}/s), "
                f"{g.get('requests', 0):,} Graph requests, {g.get('resource_units', 0):,} RU, "
                f"{g.get('throttled', 0)} throttled; repository {size / 1e6:.1f} MB",
                KIND_COLUMNS,
                kind_table(report),
            )
        )
    console.print(f"Changes made in the simulated tenant between the backups: {result.churn}")
    console.print(
        f"Data folder: {result.data_dir}\nConfig: {result.config_path}\n"
        f"Database: {result.data_dir / 'agent.db'}\nRepository: {result.data_dir / 'repository'}\n"
        f"Try: entra-backup snapshots list --config {result.config_path}"
    )
