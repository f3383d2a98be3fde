"""Backing up Exchange Online and Defender through the simulated bridge host (real pypsrp)."""

from __future__ import annotations

import random
from pathlib import Path

from agent.jobs.backup import run_backup
from agent.kinds.exchange import GROUP_KINDS, SETTINGS_KINDS
from agent.simulator.exchange import settings as sim_settings
from agent.simulator.exchange.churn import churn
from agent.simulator.exchange.dl import get_groups, get_members
from agent.simulator.exchange.state import ExchangeOrg
from tests.agent_helpers import objects_of
from tests.exchange_agent_helpers import bridge_for, exchange_agent, exchange_state

TYPES = {
    "distributionGroup": "MailUniversalDistributionGroup",
    "mailEnabledSecurityGroup": "MailUniversalSecurityGroup",
}


def truth(org: ExchangeOrg, cmdlet: str) -> list[dict[str, object]]:
    """What the simulated Exchange holds for one settings cmdlet (every list type)."""
    if cmdlet == "Get-TenantAllowBlockListItems":
        return org.snapshot_settings(cmdlet)
    return sim_settings.get(org, cmdlet.removeprefix("Get-"), {})


def test_full_backup_has_every_group_with_members_and_every_setting(tmp_path: Path) -> None:
    with exchange_agent(tmp_path) as (sim, handle, _, rt):
        report = run_backup(rt, "contoso", force_full=True)
        assert report.status == "succeeded", [(k.kind, k.reason) for k in report.kinds]
        assert report.snapshot is not None
        results = {k.kind: k for k in report.kinds}
        org = handle.exchange
        for kind, recipient_type in TYPES.items():
            live = get_groups(org, {"RecipientTypeDetails": recipient_type})
            assert live, f"the simulator made no {kind}"
            groups = objects_of(rt, report.snapshot.id, kind)
            assert set(groups) == {g["ExternalDirectoryObjectId"] for g in live}
            assert results[kind].succeeded == len(live)
            members = objects_of(rt, report.snapshot.id, f"{kind}Member")
            assert set(members) == set(groups)
            for group in live:
                gid = group["ExternalDirectoryObjectId"]
                assert groups[gid]["DisplayName"] == group["DisplayName"]
                assert groups[gid]["ManagedBy"] == group["ManagedBy"]
                expected = {
                    m["ExternalDirectoryObjectId"] for m in get_members(org, {"Identity": gid})
                }
                assert {m["ExternalDirectoryObjectId"] for m in members[gid]["members"]} == expected
        for kind in SETTINGS_KINDS:
            expected = truth(org, kind.extra["cmdlet"])
            objects = objects_of(rt, report.snapshot.id, kind.name)
            assert results[kind.name].status == "succeeded", kind.name
            assert len(objects) == len(expected) == results[kind.name].succeeded, kind.name
            assert set(objects) == {o["Identity"] for o in expected}, kind.name
        # One session for the job: one module load, one Connect, batched settings reads.
        bridge = report.graph["bridge"]["by_function"]
        assert bridge == {"Export-EbSettings": 4, "Export-EbDistributionGroups": 2}
        assert sim.bridge.stats.get("<script>") == 1
        assert sim.bridge.stats.get("Connect-EbExchange") == 1


def test_incremental_after_churn_equals_a_full_backup(tmp_path: Path) -> None:
    with exchange_agent(tmp_path, spec={"users": 200, "groups": 80}) as (_, handle, _, rt):
        first = run_backup(rt, "contoso", force_full=True)
        assert first.status == "succeeded"
        # Directory churn (members, deleted groups and users, new groups) …
        summary = handle.directory.churn(random.Random(11), 0.2)
        # … Exchange admins' changes (DL properties, members, new and deleted DLs, settings) …
        org = handle.exchange
        exchange_churn = churn(org, random.Random(12), 0.2)
        assert exchange_churn.dl_edited and exchange_churn.settings_edited
        # … and changes made through the agent's own write operations.
        dls = get_groups(org, {"RecipientTypeDetails": "MailUniversalDistributionGroup"})
        security = get_groups(org, {"RecipientTypeDetails": "MailUniversalSecurityGroup"})
        with bridge_for(rt) as bridge:
            # Graph cannot change a DL's owners (facts file §5): where the churn did, make the
            # change the way it really happens, through Exchange (which moves WhenChangedUTC).
            changed_owners = {g for g, _ in summary.owners_added + summary.owners_removed}
            for group in dls + security:
                if group["ExternalDirectoryObjectId"] in changed_owners:
                    bridge.set_group(group["Guid"], {"ManagedBy": group["ManagedBy"]})
            bridge.set_group(dls[0]["Guid"], {"MailTip": "Ask first", "ModerationEnabled": True})
            bridge.sync_members(security[0]["Guid"], [])
            created = bridge.new_group("Churn Lab", "Distribution", {"Alias": "churn-lab"})
            bridge.remove_group(dls[1]["Guid"])
            bridge.apply_setting("Set-TransportConfig", {"MaxRecipientEnvelopeLimit": 600})
            bridge.new_policy_with_rule("MalwareFilter", "Churn malware", 0)
        incremental = run_backup(rt, "contoso")
        assert incremental.mode == "incremental" and incremental.status == "succeeded"
        modes = {k.kind: k.mode for k in incremental.kinds}
        assert all(modes[k.name] == "incremental" for k in GROUP_KINDS)
        inc = {k.kind: k for k in incremental.kinds}
        total = len(dls) + 1 - 1  # one created, one removed
        assert 0 < inc["distributionGroup"].succeeded < total  # only what changed was read
        full = run_backup(rt, "contoso", force_full=True)
        assert incremental.snapshot is not None and full.snapshot is not None
        assert exchange_state(rt, incremental.snapshot.id) == exchange_state(rt, full.snapshot.id)
        groups = objects_of(rt, incremental.snapshot.id, "distributionGroup")
        assert created["ExternalDirectoryObjectId"] in groups
        assert dls[1]["ExternalDirectoryObjectId"] not in groups
        assert groups[dls[0]["ExternalDirectoryObjectId"]]["MailTip"] == "Ask first"
        members = objects_of(rt, incremental.snapshot.id, "mailEnabledSecurityGroupMember")
        assert members[security[0]["ExternalDirectoryObjectId"]]["members"] == []
        # The job report still counts the objects of each kind in the snapshot.
        counts = {k.kind: k.objects for k in incremental.snapshot.kinds}
        assert counts["distributionGroup"] == len(groups)


def test_not_licensed_skips_only_the_defender_for_office_kinds(tmp_path: Path) -> None:
    with exchange_agent(tmp_path, spec={"defender_licensed": False}) as (_, _, _, rt):
        report = run_backup(rt, "contoso", force_full=True)
        results = {k.kind: k for k in report.kinds}
        mdo = {k.name for k in SETTINGS_KINDS if k.extra["licence"]}
        assert mdo and report.status == "succeeded"
        for name in mdo:
            assert (results[name].status, results[name].reason) == ("skipped", "not licensed")
        others = set(results) - mdo
        assert all(results[name].status == "succeeded" for name in others), [
            (n, results[n].reason) for n in others if results[n].status != "succeeded"
        ]
        assert results["hostedContentFilterPolicy"].succeeded >= 1  # EOP needs no MDO
        jobs = rt.catalog.job(report.job_id)
        recorded = {k.kind: (k.status, k.reason) for k in jobs.kinds}
        assert recorded["safeLinksPolicy"] == ("skipped", "not licensed")


def test_groups_stream_into_the_repository_page_by_page(tmp_path: Path) -> None:
    with exchange_agent(tmp_path, exchange={"group_page_size": "3"}) as (_, handle, _, rt):
        report = run_backup(rt, "contoso", force_full=True)
        assert report.status == "succeeded" and report.snapshot is not None
        results = {k.kind: k for k in report.kinds}
        org = handle.exchange
        pages = 0
        for kind, recipient_type in TYPES.items():
            live = get_groups(org, {"RecipientTypeDetails": recipient_type})
            pages += -(-len(live) // 3)
            groups = objects_of(rt, report.snapshot.id, kind)
            members = objects_of(rt, report.snapshot.id, f"{kind}Member")
            assert set(groups) == set(members) == {g["ExternalDirectoryObjectId"] for g in live}
            assert results[kind].succeeded == results[f"{kind}Member"].succeeded == len(live)
            for group in live:
                gid = group["ExternalDirectoryObjectId"]
                expected = {
                    m["ExternalDirectoryObjectId"] for m in get_members(org, {"Identity": gid})
                }
                assert {m["ExternalDirectoryObjectId"] for m in members[gid]["members"]} == expected
        # One call per page of 3 groups, each type on its own.
        assert report.graph["bridge"]["by_function"]["Export-EbDistributionGroups"] == pages > 2


def test_a_listing_lost_mid_backup_is_read_again_and_counted_once(tmp_path: Path) -> None:
    with exchange_agent(tmp_path, exchange={"group_page_size": "2"}) as (sim, handle, _, rt):
        dropped: list[int] = []

        def progress(kind: str, done: int) -> None:
            # The bridge host restarts right after the first page of distribution lists.
            if kind == "distributionGroup" and done == 2 and not dropped:
                dropped.append(sim.winrm.drop_all())

        report = run_backup(rt, "contoso", force_full=True, progress=progress)
        assert dropped == [1]
        assert report.status == "succeeded" and report.snapshot is not None
        assert report.graph["bridge"]["reconnects"] == 1
        results = {k.kind: k for k in report.kinds}
        live = get_groups(handle.exchange, {"RecipientTypeDetails": TYPES["distributionGroup"]})
        ids = {g["ExternalDirectoryObjectId"] for g in live}
        # Listed again from the start, yet each group counted and stored once.
        assert results["distributionGroup"].succeeded == len(live)
        assert results["distributionGroupMember"].succeeded == len(live)
        assert set(objects_of(rt, report.snapshot.id, "distributionGroup")) == ids
        assert set(objects_of(rt, report.snapshot.id, "distributionGroupMember")) == ids
