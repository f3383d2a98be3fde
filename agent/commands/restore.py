"""restore: plan, dry-run, apply and verify a snapshot back into the tenant."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from agent.commands.backup import EXIT_PARTIAL
from agent.commands.common import ConfigOpt, JsonOpt, app, console, print_json, runtime, table
from agent.compare.sides import SnapshotSide, resolve_snapshot
from agent.errors import ConfigError
from agent.kinds import BY_NAME, resolve
from agent.restore.actions import MODES, Plan, Request
from agent.restore.apply import RestoreReport, run_restore
from agent.restore.restorers import ready, restorable

EXIT_REFUSED = 2


@app.command()
def restore(
    snapshot: Annotated[str, typer.Option("--snapshot", "-s", help="Snapshot id, 'latest'.")],
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="Tenant name.")],
    kind: Annotated[
        list[str] | None, typer.Option("--kind", "-k", help="Only this kind; repeat for more.")
    ] = None,
    object_id: Annotated[
        list[str] | None, typer.Option("--id", help="Only this object (or parent) id; repeat.")
    ] = None,
    props: Annotated[
        str | None, typer.Option("--properties", help="Only these properties, e.g. department.")
    ] = None,
    with_relationships: Annotated[
        bool,
        typer.Option("--with-relationships", help="Also the links of the chosen objects."),
    ] = False,
    mode: Annotated[
        str, typer.Option("--mode", help="For objects that exist: overwrite | merge | skip.")
    ] = "overwrite",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Apply without asking.")] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Also remove Exchange/Defender policies and rules created after the snapshot "
            "(without it they are only listed; built-in policies are never removed).",
        ),
    ] = False,
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="New owner-only file for recreated users' passwords."),
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Restore objects, properties or links of a snapshot: plan, apply, verify."""
    if mode not in MODES:
        raise ConfigError(f"Unknown mode '{mode}'.", f"Use --mode {' | '.join(MODES)}.")
    rt = runtime(config)
    rt.config.tenant(tenant)
    snap = resolve_snapshot(rt.catalog, snapshot, tenant)
    if kind:
        chosen = resolve(kind)
        if with_relationships:
            names = {k.name for k in chosen}
            chosen = resolve([*names, *(n for n in ready() if BY_NAME[n].parent in names)])
    else:
        chosen = resolve(sorted(ready()))
    request = Request(
        kinds=restorable(chosen) if not kind else chosen,
        ids=set(object_id) if object_id else None,
        properties={p.strip() for p in props.split(",") if p.strip()} if props else None,
        mode=mode,
        prune=prune,
    )

    def confirm(plan: Plan) -> None:
        if yes:
            return
        if not sys.stdin.isatty():
            raise ConfigError(
                "Refusing to restore without confirmation: no terminal to ask on.",
                "Review the plan with --dry-run, then add --yes to apply it.",
            )
        _show_plan(plan)
        if not typer.confirm(f"Apply these {len(plan.writes())} actions?", default=False):
            raise typer.Exit(EXIT_REFUSED)

    side = SnapshotSide(rt.catalog, rt.repository, snap.tenant, snap.seq)
    report = run_restore(
        rt,
        tenant,
        side,
        snap.id,
        request,
        dry_run=dry_run,
        confirm=confirm,
        password_file=password_file,
    )
    if json_out:
        print_json(report.json())
    else:
        _show(report)
    if report.failed:
        raise typer.Exit(EXIT_PARTIAL)


def _show_plan(plan: Plan) -> None:
    console.print(
        f"Restore plan for tenant {plan.tenant} from snapshot {plan.snapshot_id} "
        f"(mode {plan.mode}): {len(plan.writes())} actions",
        highlight=False,
    )
    if not plan.actions:
        console.print("Nothing to do: the live tenant matches the snapshot.")
        return
    rows = [
        [
            a.kind,
            a.label or a.object_id,
            a.action,
            ", ".join(sorted(a.patch)) or _links(a),
            "; ".join(f"{p}: {why}" for p, why in sorted(a.notes.items())) or a.reason,
        ]
        for a in plan.actions
    ]
    console.print(table("Plan", ["kind", "object", "action", "writes", "not written / why"], rows))


def _links(a: object) -> str:
    add, remove = getattr(a, "add", []), getattr(a, "remove", [])
    return f"+{len(add)} -{len(remove)} links" if add or remove else ""


def _show(report: RestoreReport) -> None:
    _show_plan(report.plan)
    if report.dry_run:
        console.print("Dry run: nothing was written.")
        for stop in report.blocked:  # what the real run refuses before its first write
            console.print(
                f"The real run would stop before any write: {stop.message} Fix: {stop.fix}",
                highlight=False,
            )
        return
    rows = [
        [
            o.action.kind,
            o.action.label or o.action.object_id,
            o.action.action,
            o.status,
            o.reason
            or "; ".join(f"{p}: {why}" for p, why in sorted(o.properties.items()))
            or o.action.reason,  # e.g. why a service principal was recreated, not undeleted
        ]
        for o in report.outcomes
    ]
    console.print(
        table(f"Restore job {report.job_id}", ["kind", "object", "action", "result", "why"], rows)
    )
    if report.password_file:
        console.print(f"Temporary passwords of recreated users: {report.password_file}")
