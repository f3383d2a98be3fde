"""diff and history: what changed between snapshots or since a snapshot in the live tenant,
and every version of one object."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Annotated, Any

import typer
from rich.tree import Tree

from agent.commands.backup import EXIT_PARTIAL
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
from agent.compare.differ import ADDED, REMOVED, ObjectDiff, PropertyChange, change_json
from agent.compare.history import object_history
from agent.compare.live import read_live
from agent.compare.report import DiffReport, diff_live, diff_snapshots
from agent.compare.sides import Side, SnapshotSide, label_of, predecessor, resolve_snapshot
from agent.db.catalog import SnapshotView
from agent.errors import ConfigError
from agent.jobs.backup import scope_kinds
from agent.kinds import ALL_KINDS, resolve
from agent.runtime import Runtime

TenantOpt = Annotated[
    str | None,
    typer.Option("--tenant", "-t", help="Tenant name (default: the only configured tenant)."),
]
KindOpt = Annotated[
    list[str] | None,
    typer.Option("--kind", "-k", help="Only this kind or area; repeat for more."),
]
HISTORY_SCHEMA = "entra-backup/history/1"
MAX_VALUE = 70  # characters of a value shown in human output
# "#microsoft.graph.user" → "user": to name the members, owners… a change adds or removes.
KIND_OF_TYPE = {
    f"#microsoft.graph.{k.entity_type}": k.name for k in ALL_KINDS if k.entity_type and not k.parent
}
SIGNS = {"added": "[green]+[/]", "removed": "[red]-[/]", "changed": "[yellow]~[/]"}


@app.command()
def diff(
    snapshot: Annotated[
        str, typer.Argument(help="Snapshot id (see 'snapshots list'), 'latest' or 'previous'.")
    ],
    snapshot2: Annotated[
        str | None,
        typer.Argument(help="Compare SNAPSHOT with this one (default: the one before SNAPSHOT)."),
    ] = None,
    live: Annotated[
        bool,
        typer.Option("--live", help="Compare SNAPSHOT with the live tenant (read now, not kept)."),
    ] = False,
    tenant: TenantOpt = None,
    kind: KindOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Objects added, removed and changed (down to the property) between two snapshots, or
    between a snapshot and the live tenant."""
    if live and snapshot2 is not None:
        raise ConfigError(
            "Give a second snapshot or --live, not both.",
            "Use 'diff A B' for two snapshots, 'diff A --live' for a snapshot and the tenant.",
        )
    rt = runtime(config)
    catalog = rt.catalog
    kinds = [k.name for k in resolve(kind)] if kind else None
    tenant_name = _tenant(rt, tenant, [snapshot, snapshot2])
    if live and tenant_name is not None:
        rt.config.tenant(tenant_name)  # reading it live needs its config
    first = resolve_snapshot(catalog, snapshot, tenant_name)
    if live:
        chosen = resolve(kinds) if kinds else scope_kinds(rt.config.tenant(first.tenant), None)[1]
        with ExitStack() as stack:
            with kind_progress(f"{first.tenant} live", quiet=json_out) as progress:
                read = stack.enter_context(read_live(rt, first.tenant, chosen, progress=progress))
            report = diff_live(catalog, rt.repository, first, read)
            # Inside the live read: names of added members etc. come from what was read.
            then = SnapshotSide(catalog, rt.repository, first.tenant, first.seq)
            _show(report, json_out, (read, then))
    else:
        old: SnapshotView | None
        if snapshot2 is None:
            old, new = predecessor(catalog, first), first
        else:
            old, new = first, resolve_snapshot(catalog, snapshot2, first.tenant)
        report = diff_snapshots(catalog, rt.repository, old, new, kinds)
        sides = [SnapshotSide(catalog, rt.repository, new.tenant, new.seq)]
        if old is not None:
            sides.append(SnapshotSide(catalog, rt.repository, old.tenant, old.seq))
        _show(report, json_out, sides)
    if report.incomplete:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def history(
    kind: Annotated[str, typer.Option("--kind", "-k", help="The object's kind, e.g. user.")],
    object_id: Annotated[str, typer.Option("--id", help="The object's id.")],
    tenant: TenantOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Every version of one object across snapshots: when it appeared, each change, removal."""
    rt = runtime(config)
    tenant_name = tenant or _only_tenant(rt)
    events = object_history(rt.catalog, rt.repository, tenant_name, kind, object_id)
    label = next((e.label for e in reversed(events) if e.label), "")
    if json_out:
        print_json(
            {
                "schema": HISTORY_SCHEMA,
                "tenant": tenant_name,
                "kind": kind,
                "id": object_id,
                "label": label,
                "events": [
                    {
                        "event": e.event,
                        "snapshot": e.snapshot_id,
                        "seq": e.seq,
                        "completed_at": e.at.isoformat() if e.at else None,
                        "version": e.version,
                        "blob": e.blob_id,
                        "label": e.label,
                        "changes": [change_json(c) for c in e.changes],
                    }
                    for e in events
                ],
            }
        )
        return
    versions = sum(1 for e in events if e.version)
    tree = Tree(
        f"[bold]{kind}[/] {_escape(label)} [dim]{object_id}[/] in tenant {tenant_name}: "
        f"{versions} version(s)",
        highlight=False,
    )
    for e in events:
        when = f", {e.at:%Y-%m-%d %H:%M:%S} UTC" if e.at else ""
        version = f" — version {e.version}" if e.version else ""
        node = tree.add(
            f"{SIGNS[e.event]} {e.event} in snapshot {e.snapshot_id} (#{e.seq}{when}){version}",
            highlight=False,
        )
        for change in e.changes:
            node.add(_change_line(change, lambda _kind, _id: ""), highlight=False)
    console.print(tree)


def _tenant(rt: Runtime, tenant: str | None, refs: Sequence[str | None]) -> str | None:
    """The tenant named, the one a numbered snapshot belongs to, or the only configured one
    (None: ambiguous; a 'latest' / 'previous' reference then asks for --tenant)."""
    if tenant is not None:
        return tenant
    for ref in refs:
        if ref is not None and ref.strip().isdigit():
            return rt.catalog.snapshot(int(ref)).tenant
    names = sorted(rt.config.tenants)
    return names[0] if len(names) == 1 else None


def _only_tenant(rt: Runtime) -> str:
    names = sorted(rt.config.tenants)
    if len(names) != 1:
        raise ConfigError(
            f"Name the tenant: {len(names)} are configured ({', '.join(names) or 'none'}).",
            "Add --tenant NAME.",
        )
    return names[0]


def _show(report: DiffReport, json_out: bool, sides: Sequence[Side]) -> None:
    if json_out:
        print_json(report.json())
        return
    console.print(
        f"Tenant {report.tenant}: {report.old.describe()} → {report.new.describe()}",
        highlight=False,
    )
    # Only kinds with something to say: changes, or not compared and why.
    rows = [
        [k.kind, k.counts["added"], k.counts["removed"], k.counts["changed"], k.status, k.reason]
        for k in report.kinds.values()
        if any(k.counts.values()) or k.status != "compared" or k.reason
    ]
    if rows:
        console.print(table("Per kind", ["kind", "added", "removed", "changed", "", "note"], rows))
    same = sum(
        1 for k in report.kinds.values() if k.status == "compared" and not any(k.counts.values())
    )
    if same:
        console.print(f"{same} other kind(s) compared: no differences.")
    if not report.objects:
        console.print("No differences.")
        return
    cache: dict[tuple[str, str], str] = {}

    def name(kind: str, object_id: str) -> str:
        if (kind, object_id) not in cache:
            found = next((c for s in sides if (c := s.find(kind, object_id)) is not None), None)
            cache[(kind, object_id)] = label_of(kind, object_id, found, sides) if found else ""
        return cache[(kind, object_id)]

    trees: dict[str, Tree] = {}
    for obj in report.objects:
        tree = trees.setdefault(obj.kind, Tree(f"[bold]{obj.kind}[/]"))
        node = tree.add(_object_line(obj), highlight=False)
        for change in obj.changes:
            node.add(_change_line(change, name), highlight=False)
    for tree in trees.values():
        console.print(tree)


def _object_line(obj: ObjectDiff) -> str:
    label = f"{_escape(obj.label)} " if obj.label else ""
    return f"{SIGNS[obj.status]} {label}[dim]{obj.object_id}[/] {obj.status}"


def _change_line(change: PropertyChange, name: Callable[[str, str], str]) -> str:
    path = _escape(change.path)
    if change.hidden:
        return f"{SIGNS[change.op]} {path} (changed)"
    if change.op == ADDED:
        return f"{SIGNS[ADDED]} {path}: {_value(change.new, name)}"
    if change.op == REMOVED:
        return f"{SIGNS[REMOVED]} {path}: {_value(change.old, name)}"
    return f"{SIGNS['changed']} {path}: {_value(change.old, name)} → {_value(change.new, name)}"


def _value(value: Any, name: Callable[[str, str], str]) -> str:
    # A reference (member, owner…) is shown by the name of what it points to.
    if isinstance(value, dict) and set(value) <= {"id", "@odata.type"} and "id" in value:
        kind = KIND_OF_TYPE.get(str(value.get("@odata.type")))
        label = name(kind, str(value["id"])) if kind else ""
        return _escape(f"{label} ({kind})" if label else str(value["id"]))
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return _escape(text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…")


def _escape(text: str) -> str:
    return text.replace("[", "\\[")
