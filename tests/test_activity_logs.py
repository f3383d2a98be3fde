"""Audit and sign-in logs archived by time window: every event once, only new ones on the next
run, kept after Entra's retention drops them; skipped by name when not licensed or not
permitted."""

from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import unquote

from agent.jobs.backup import run_backup
from agent.simulator.graph.activity import audit_entity, drop_premium, signin_entity
from agent.simulator.service import READ_PERMISSIONS, Simulator
from tests.agent_helpers import agent_for, cli, simulated_tenant, state_of

LOGS = [*READ_PERMISSIONS, "AuditLog.Read.All"]
SMALL = {"users": 300, "groups": 30}
DAY = 24 * 3600


def archived(rt, snapshot_id: int, kind: str) -> dict[str, dict]:
    return {
        oid: rt.repository.get(blob)
        for (k, oid), blob in state_of(rt, snapshot_id).items()
        if k == kind
    }


def visible_signins(sim: Simulator) -> dict[str, dict]:
    d = sim.tenants["contoso"].directory
    with d.lock:
        now = d.now()
        return {
            r[3]: signin_entity(d.tenant_id, r)
            for r in d.activity.signins
            if r[2] <= now and r[1] >= now - 30 * DAY
        }


def kind_row(report, name: str):
    return next(k for k in report.snapshot.kinds if k.kind == name)


def test_events_are_archived_once_and_a_second_run_adds_only_new_ones(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", graph_permissions=LOGS, **SMALL) as sim:
        directory = sim.tenants["contoso"].directory
        changes = directory.churn(random.Random(5), 0.03)
        _, rt = agent_for(tmp_path / "agent", sim)
        first = run_backup(rt, "contoso", force_full=True)
        assert first.status == "succeeded", [k for k in first.kinds if k.status != "succeeded"]

        # Every audit event, exactly as Graph answered it; an edited user is named in one.
        audits = archived(rt, first.snapshot.id, "directoryAudit")
        expected = {}
        for record in directory.activity.audits:
            entity = audit_entity(directory.tenant_id, record)
            expected[entity["id"]] = entity
        assert audits == expected
        edited = changes.users_changed[0]
        assert any(
            a["activityDisplayName"] == "Update user" and a["targetResources"][0]["id"] == edited
            for a in audits.values()
        )
        signins_first = archived(rt, first.snapshot.id, "signIn")
        assert len(signins_first) > 500  # the whole 30-day window on the first run

        directory.churn(random.Random(6), 0.02)
        directory.advance_clock(2 * 3600)
        sim.log.clear()
        second = run_backup(rt, "contoso")
        assert second.status == "succeeded"
        # Read from the high-water mark, not the whole window …
        reads = [r for r in sim.log.items() if r.path.endswith("/auditLogs/signIns")]
        assert reads and "createdDateTime ge " in unquote(reads[0].query.replace("+", " "))
        # … and the archive is every event there is (late arrivals included, caught by the
        # overlap) plus those that aged out of Entra's 30 days since; none stored twice.
        assert archived(rt, second.snapshot.id, "signIn") == {
            **signins_first,
            **visible_signins(sim),
        }
        audits_after = archived(rt, second.snapshot.id, "directoryAudit")
        assert len(audits_after) == len(directory.activity.audits)
        for name in ("signIn", "directoryAudit"):
            row = kind_row(second, name)
            assert row.changed == row.removed == 0
            assert row.added == row.objects - kind_row(first, name).objects > 0
        assert sim.errors == []
        rt.close()


def test_events_entra_no_longer_keeps_stay_in_later_snapshots(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", graph_permissions=LOGS, **SMALL) as sim:
        directory = sim.tenants["contoso"].directory
        directory.churn(random.Random(7), 0.03)
        _, rt = agent_for(tmp_path / "agent", sim)
        first = run_backup(rt, "contoso", force_full=True)
        old_audits = archived(rt, first.snapshot.id, "directoryAudit")
        old_signins = archived(rt, first.snapshot.id, "signIn")
        assert old_audits and old_signins

        directory.advance_clock(31 * DAY)  # beyond Entra's 30 days: all of it is gone there
        assert not set(visible_signins(sim)) & set(old_signins)
        incremental = run_backup(rt, "contoso")
        full = run_backup(rt, "contoso", force_full=True)  # a full read must not drop them
        for report in (incremental, full):
            assert report.status == "succeeded"
            signins = archived(rt, report.snapshot.id, "signIn")
            assert {k: signins[k] for k in old_signins} == old_signins
            assert archived(rt, report.snapshot.id, "directoryAudit") == old_audits
            assert kind_row(report, "signIn").removed == 0
            assert kind_row(report, "directoryAudit").removed == 0
        assert len(archived(rt, full.snapshot.id, "signIn")) > len(old_signins)
        rt.close()


def test_without_entra_id_p1_sign_ins_are_skipped_not_licensed(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", graph_permissions=LOGS, **SMALL) as sim:
        directory = sim.tenants["contoso"].directory
        directory.churn(random.Random(8), 0.02)
        _, rt = agent_for(tmp_path / "agent", sim)
        licensed = run_backup(rt, "contoso", force_full=True)
        before = archived(rt, licensed.snapshot.id, "signIn")
        assert before

        drop_premium(directory)  # the subscription lapsed: Graph refuses sign-in logs now
        report = run_backup(rt, "contoso")
        kinds = {k.kind: k for k in report.kinds}
        assert kinds["signIn"].status == "skipped"
        assert kinds["signIn"].reason == "not licensed"
        assert kinds["directoryAudit"].status == "succeeded"
        assert report.status == "succeeded"
        job = rt.catalog.job(report.job_id)
        assert any(k.kind == "signIn" and k.reason == "not licensed" for k in job.kinds)
        assert any("not licensed" in e.message for e in rt.catalog.events(report.job_id))
        # What was archived while licensed is carried forward untouched.
        assert archived(rt, report.snapshot.id, "signIn") == before
        assert kind_row(report, "signIn").status == "carried"
        rt.close()


def test_free_tenant_keeps_audit_events_seven_days(tmp_path: Path) -> None:
    with simulated_tenant(
        tmp_path / "sim", graph_permissions=LOGS, entra_premium=False, **SMALL
    ) as sim:
        directory = sim.tenants["contoso"].directory
        directory.churn(random.Random(9), 0.02)
        _, rt = agent_for(tmp_path / "agent", sim)
        first = run_backup(rt, "contoso", force_full=True)
        assert {k.kind: k.reason for k in first.kinds}["signIn"] == "not licensed"
        audits = archived(rt, first.snapshot.id, "directoryAudit")
        assert audits
        directory.advance_clock(8 * DAY)  # past a free tenant's 7 days
        later = run_backup(rt, "contoso", force_full=True)
        assert {k.kind: k.succeeded for k in later.kinds}["directoryAudit"] == 0
        assert archived(rt, later.snapshot.id, "directoryAudit") == audits
        rt.close()


def test_without_audit_log_permission_both_logs_are_skipped_by_name(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", **SMALL) as sim:  # no AuditLog.Read.All
        _, rt = agent_for(tmp_path / "agent", sim)
        report = run_backup(rt, "contoso", force_full=True)
        reasons = {k.kind: (k.status, k.reason) for k in report.kinds}
        assert reasons["directoryAudit"] == ("skipped", "missing AuditLog.Read.All")
        assert reasons["signIn"] == ("skipped", "missing AuditLog.Read.All")
        assert report.status == "succeeded"
        assert not any("/auditLogs/" in r.path for r in sim.log.items())
        rt.close()


def test_live_diff_leaves_out_events_entra_aged_out(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", graph_permissions=LOGS, **SMALL) as sim:
        directory = sim.tenants["contoso"].directory
        directory.churn(random.Random(9), 0.03)
        config, rt = agent_for(tmp_path / "agent", sim)
        first = run_backup(rt, "contoso", force_full=True)
        old_signins = archived(rt, first.snapshot.id, "signIn")
        old_audits = archived(rt, first.snapshot.id, "directoryAudit")
        rt.close()

        directory.advance_clock(10 * DAY)  # ten days of the archive age out of Entra's 30
        assert set(old_signins) - set(visible_signins(sim))  # Entra dropped some
        directory.churn(random.Random(10), 0.02)  # … and recorded new events since
        with directory.lock:  # control: an archived event still inside the window vanishes
            audits = directory.activity.audits
            index = max(
                i
                for i, r in enumerate(audits)
                if audit_entity(directory.tenant_id, r)["id"] in old_audits
            )
            gone = audit_entity(directory.tenant_id, audits.pop(index))["id"]

        result = cli("diff", str(first.snapshot.id), "--live", "--json", "--config", str(config))
        assert result.code == 0, result.err
        report = result.json()
        removed = {(o["kind"], o["id"]) for o in report["objects"] if o["status"] == "removed"}
        added = {o["kind"] for o in report["objects"] if o["status"] == "added"}
        # Aged-out events are kept in the archive on purpose: not "removed" …
        assert not {(k, i) for k, i in removed if k == "signIn"}
        assert removed & {("directoryAudit", i) for i in old_audits} == {("directoryAudit", gone)}
        # … while new events show as added, and one missing inside the window as removed.
        assert {"signIn", "directoryAudit"} <= added
        notes = {k["kind"]: k["reason"] for k in report["kinds"]}
        assert notes["signIn"].startswith("archive: events the service no longer keeps (before ")
        assert sim.errors == []
