"""Restore of the Exchange/Defender settings families beyond policies with rules, through the
CLI, the real pypsrp client and the simulated bridge host: each family is damaged the way an
administrator would (changed, deleted, a rule removed under its policy, a rule disabled),
restored and compared with the snapshot; dry-run writes nothing; --prune removes what was
created since; throttled writes are retried and reported when retries run out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.simulator.exchange import cmdlets
from agent.simulator.exchange import role_assignments as rbac_writes
from agent.simulator.exchange import settings as sim
from agent.simulator.exchange import settings_restore as sim_restore
from agent.simulator.exchange.cmdlets import Session
from agent.simulator.exchange.errors import CmdletError
from agent.simulator.exchange.state import ExchangeOrg
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import backup, restore, write_requests
from tests.exchange_agent_helpers import exchange_agent
from tests.test_restore_e2e import WRITES
from tests.test_restore_exchange import bridge_writes

CUSTOM_DOMAIN = "fabrikam.example"
# Kind -> Get- cmdlet of every family this drill damages.
FAMILIES = {
    "acceptedDomain": "Get-AcceptedDomain",
    "remoteDomain": "Get-RemoteDomain",
    "inboundConnector": "Get-InboundConnector",
    "outboundConnector": "Get-OutboundConnector",
    "quarantinePolicy": "Get-QuarantinePolicy",
    "owaMailboxPolicy": "Get-OwaMailboxPolicy",
    "mobileDeviceMailboxPolicy": "Get-MobileDeviceMailboxPolicy",
    "dkimSigningConfig": "Get-DkimSigningConfig",
    "eopProtectionPolicyRule": "Get-EOPProtectionPolicyRule",
    "atpProtectionPolicyRule": "Get-ATPProtectionPolicyRule",
    "atpBuiltInProtectionRule": "Get-ATPBuiltInProtectionRule",
    "reportSubmissionPolicy": "Get-ReportSubmissionPolicy",
    "reportSubmissionRule": "Get-ReportSubmissionRule",
    "teamsProtectionPolicy": "Get-TeamsProtectionPolicy",
    "teamsProtectionPolicyRule": "Get-TeamsProtectionPolicyRule",
    "protectionAlert": "Get-ProtectionAlert",
    "hostedContentFilterRule": "Get-HostedContentFilterRule",
    "malwareFilterRule": "Get-MalwareFilterRule",
    "hostedOutboundSpamFilterPolicy": "Get-HostedOutboundSpamFilterPolicy",
    "transportRule": "Get-TransportRule",
    "tenantAllowBlockListItem": "Get-TenantAllowBlockListItems",
    "roleGroup": "Get-RoleGroup",
}
# Set by Exchange at every write or creation: not settings.
STAMPS = {"WhenChanged", "WhenChangedUTC", "WhenCreated", "WhenCreatedUTC", "Guid", "Id",
          "Identity", "DistinguishedName", "LastModifiedDateTime", "RoleAssignments",
          "ExternalDirectoryObjectId"}  # fmt: skip


@pytest.fixture
def env(tmp_path: Path):
    spec = {"graph_permissions": [*READ_PERMISSIONS, *WRITES]}
    with exchange_agent(tmp_path, kinds=("exchange", "defender"), spec=spec) as (s, h, c, _):
        yield s, h, str(c)


def kinds(*names: str) -> list[str]:
    return [x for n in names for x in ("--kind", n)]


def objects(org: ExchangeOrg, get: str) -> dict[str, dict[str, Any]]:
    """A family as Exchange holds it, keyed by name (allow/block entries by list and value),
    without the stamps and ids Exchange sets."""
    with org.lock:
        found = sim.get(org, get.removeprefix("Get-"), {})
        if get == "Get-TenantAllowBlockListItems":
            found = org.snapshot_settings(get)

    def plain(value: Any) -> Any:  # Exchange shows a cleared list as null or as []
        if value in (None, [], ""):
            return None
        return sorted(map(str, value)) if isinstance(value, list) else value

    out = {}
    for obj in found:
        key = f"{obj['ListType']}:{obj['Value']}" if "ListType" in obj else str(obj["Name"])
        out[key] = {k: plain(v) for k, v in obj.items() if k not in STAMPS}
    return out


def state(org: ExchangeOrg) -> dict[str, dict[str, dict[str, Any]]]:
    return {kind: objects(org, get) for kind, get in FAMILIES.items()}


def prepare(org: ExchangeOrg) -> str:
    """Before the snapshot: what an administrator set up beyond the defaults."""
    user = next(r["id"] for _, r in org.directory.scan("user", 0) if r.get("mail"))
    org.ctx.domains.append(CUSTOM_DOMAIN)  # added and verified in Microsoft 365
    with org.lock:
        run = sim_restore.new_object
        run(org, "AcceptedDomain", {"Name": CUSTOM_DOMAIN, "DomainName": CUSTOM_DOMAIN})
        run(org, "DkimSigningConfig", {"DomainName": CUSTOM_DOMAIN, "Enabled": True})
        run(org, "RemoteDomain", {"Name": "Partner", "DomainName": "partner.example"})
        sim.set_(org, "RemoteDomain", {"Identity": "Partner", "AutoForwardEnabled": False})
        run(org, "QuarantinePolicy", {"Name": "Drill quarantine", "ESNEnabled": True,
                                      "EndUserQuarantinePermissionsValue": 7})  # fmt: skip
        run(org, "OwaMailboxPolicy", {"Name": "Drill OWA"})
        sim.set_(org, "OwaMailboxPolicy", {"Identity": "Drill OWA", "OfflineEnabledWeb": False})
        run(org, "MobileDeviceMailboxPolicy", {"Name": "Drill mobile", "PasswordEnabled": True,
                                               "MinPasswordLength": 6})  # fmt: skip
        run(org, "TeamsProtectionPolicyRule", {"Name": "Teams exceptions",
             "TeamsProtectionPolicy": "Teams Protection Policy",
             "ExceptIfRecipientDomainIs": ["partner.example"]})  # fmt: skip
        run(org, "ProtectionAlert", {"Name": "Drill alert", "Category": "ThreatManagement",
             "NotifyUser": ["soc@contoso.com"], "ThreatType": "Activity",
             "Severity": "High"})  # fmt: skip
        sim.new_policy(org, "MalwareFilterPolicy", {"Name": "Drill malware"})
        # A policy applied to no one yet (no rule of its own).
        sim.new_policy(org, "HostedOutboundSpamFilterPolicy",
                       {"Name": "Drill outbound", "RecipientLimitPerDay": 100})  # fmt: skip
        sim.new_rule(org, "MalwareFilterRule", {"Name": "Drill malware", "Priority": 0,
                     "MalwareFilterPolicy": "Drill malware", "SentToMemberOf": ["finance"]})  # fmt: skip
        sim.new_role_group(org, {"Name": "Drill helpdesk", "Roles": ["View-Only Recipients"],
                                 "Members": [user], "Description": "Tier 1"})  # fmt: skip
        sim_restore.update_role_group_member(org, {"Identity": "Help Desk", "Members": [user]})
    return user


def damage(org: ExchangeOrg) -> None:
    with org.lock:
        # Deleted (gone for good: Exchange keeps no recycle bin for settings).
        for get, name in (
            ("Get-AcceptedDomain", CUSTOM_DOMAIN),
            ("Get-DkimSigningConfig", CUSTOM_DOMAIN),
            ("Get-RemoteDomain", "Partner"),
            ("Get-InboundConnector", "From partner (TLS)"),
            ("Get-OutboundConnector", "To partner (TLS)"),
            ("Get-QuarantinePolicy", "Drill quarantine"),
            ("Get-OwaMailboxPolicy", "Drill OWA"),
            ("Get-MobileDeviceMailboxPolicy", "Drill mobile"),
            ("Get-ReportSubmissionRule", "DefaultReportSubmissionRule"),
            ("Get-ReportSubmissionPolicy", "DefaultReportSubmissionPolicy"),
            ("Get-TeamsProtectionPolicyRule", "Teams exceptions"),
            ("Get-ProtectionAlert", "Drill alert"),
            ("Get-HostedOutboundSpamFilterPolicy", "Drill outbound"),
            # A Defender rule removed while its policy stays.
            ("Get-HostedContentFilterRule", "Executives"),
        ):
            objects_of = org.settings_of(get)
            objects_of.remove(sim.find(org, get.removeprefix("Get-"), name))
        rbac_writes.remove_role_group(org, "Drill helpdesk")
        entries = org.settings_of("Get-TenantAllowBlockListItems")
        entries.remove(next(e for e in entries if e["Value"] == "spam.example"))
        next(e for e in entries if e["Value"] == "203.0.113.7")["Notes"] = "defaced"
        sim_restore.new_allow_block(org, {"ListType": "Url", "Entries": ["added.example/*"],
                                          "Block": True, "NoExpiration": True})  # fmt: skip
        # Changed, and rules disabled / enabled.
        for noun, identity, change in (
            ("EOPProtectionPolicyRule", "Standard Preset Security Policy",
             {"Comments": "defaced", "ExceptIfSentTo": ["ceo"]}),
            ("ATPProtectionPolicyRule", "Standard Preset Security Policy", {"Comments": "x"}),
            ("ATPBuiltInProtectionRule", "ATP Built-In Protection Rule",
             {"ExceptIfRecipientDomainIs": ["contoso.com"]}),
            ("TeamsProtectionPolicy", "Teams Protection Policy", {"ZapEnabled": False}),
            ("ProtectionAlert", "Suspicious email sending patterns detected",
             {"Disabled": True, "NotifyUser": ["nobody@contoso.com"]}),
        ):  # fmt: skip
            sim.set_(org, noun, {"Identity": identity, **change})
        sim_restore.set_state(org, "Enable", "EOPProtectionPolicyRule",
                              {"Identity": "Standard Preset Security Policy"})  # fmt: skip
        sim_restore.set_state(org, "Disable", "MalwareFilterRule", {"Identity": "Drill malware"})
        sim_restore.set_state(org, "Disable", "TransportRule",
                              {"Identity": "External sender banner"})  # fmt: skip
        # Role groups: a built-in one lost its member and was edited; a custom one is gone.
        help_desk = sim_restore.role_group(org, "Help Desk")
        help_desk["Members"], help_desk["Description"] = [], "defaced"
        # Created since: listed, removed only with --prune.
        sim_restore.new_object(org, "QuarantinePolicy", {"Name": "Added later"})


def test_drill_restores_every_settings_family(env) -> None:
    simulator, handle, config = env
    org = handle.exchange
    prepare(org)
    snap = backup(config)
    before = state(org)
    damage(org)
    damaged = state(org)
    assert [k for k in FAMILIES if damaged[k] == before[k]] == []
    chosen = kinds(*FAMILIES, "reportSubmissionPolicy", "hostedContentFilterPolicy",
                   "malwareFilterPolicy", "teamsProtectionPolicy")  # fmt: skip

    # Dry run: the plan, and not one write sent to the bridge host or Graph.
    mark, http_mark = len(simulator.winrm.log), len(simulator.log.items())
    plan = restore(config, snap, "--dry-run", "--json", *chosen).json()
    assert bridge_writes(simulator, mark) == [] and write_requests(simulator, http_mark) == []
    actions = {(a["kind"], a["id"]): a for a in plan["plan"]["actions"]}
    for key in (
        ("acceptedDomain", CUSTOM_DOMAIN),
        ("dkimSigningConfig", CUSTOM_DOMAIN),
        ("remoteDomain", "Partner"),
        ("inboundConnector", "From partner (TLS)"),
        ("quarantinePolicy", "Drill quarantine"),
        ("protectionAlert", "Drill alert"),
        ("roleGroup", "Drill helpdesk"),
        ("reportSubmissionPolicy", "DefaultReportSubmissionPolicy"),
        ("reportSubmissionRule", "DefaultReportSubmissionRule"),
        ("hostedOutboundSpamFilterPolicy", "Drill outbound"),
    ):
        assert actions[key]["action"] == "recreate", actions[key]
    rule = actions[("hostedContentFilterRule", "Executives")]
    assert rule["action"] == "recreate" and "policy 'Executives' remains" in rule["reason"]
    assert "then enabled" in actions[("dkimSigningConfig", CUSTOM_DOMAIN)]["reason"]
    later = actions[("quarantinePolicy", "Added later")]
    assert later["action"] == "skip" and "--prune" in later["reason"]
    help_desk = actions[("roleGroup", "Help Desk")]
    assert help_desk["action"] == "patch" and "Description" in help_desk["not_written"]

    report = restore(config, snap, "--yes", "--json", *chosen).json()
    failed = [r for r in report["results"] if r["status"] == "failed"]
    assert failed == [], failed
    after = state(org)
    # Every family equals the snapshot, but for what was created since (kept without --prune)
    # and the built-in role group's description (only members are restored there).
    assert after["quarantinePolicy"].pop("Added later")
    assert after["tenantAllowBlockListItem"].pop("Url:added.example/*")
    assert after["roleGroup"]["Help Desk"].pop("Description") == "defaced"
    before["roleGroup"]["Help Desk"].pop("Description")
    for kind in FAMILIES:
        assert after[kind] == before[kind], kind
    results = {(r["kind"], r["id"]): r for r in report["results"]}
    assert "Description" in results[("roleGroup", "Help Desk")]["not_restored"]
    # Allow/block entries come back under new ids, recorded in the id map.
    entries = [
        r
        for r in report["results"]
        if r["kind"] == "tenantAllowBlockListItem" and r["action"] == "recreate"
    ]
    assert sorted(r["label"] for r in entries) == ["203.0.113.7", "spam.example"], entries
    assert all(r["new_id"] for r in entries)
    mapped = {o["new"] for o in report["id_map"]["objects"]}
    assert {r["new_id"] for r in entries} <= mapped

    # A second restore finds nothing to write; --prune removes what was created since.
    again = restore(config, snap, "--dry-run", "--json", *chosen).json()
    assert [a for a in again["plan"]["actions"] if a["action"] not in ("skip",)] == []
    pruned = restore(config, snap, "--yes", "--json", "--prune", *chosen).json()
    assert pruned["summary"]["failed"] == 0, pruned["results"]
    removed = {(r["kind"], r["action"]) for r in pruned["results"]}
    assert ("quarantinePolicy", "remove") in removed
    assert ("tenantAllowBlockListItem", "remove") in removed
    final = state(org)
    final["roleGroup"]["Help Desk"].pop("Description")
    assert final == before


def test_throttled_writes_are_retried_and_reported_when_retries_run_out(env) -> None:
    simulator, handle, config = env
    org = handle.exchange
    org.ctx.domains.append(CUSTOM_DOMAIN)
    with org.lock:
        sim_restore.new_object(org, "DkimSigningConfig", {"DomainName": CUSTOM_DOMAIN,
                                                          "Enabled": True})  # fmt: skip
    snap = backup(config)
    org.faults.throttle_retry_after_s = 1

    def damage_rule() -> None:
        with org.lock:
            sim.set_(org, "TransportRule", {"Identity": "External sender banner", "Comments": "x"})

    def set_calls(since: int) -> int:
        return bridge_writes(simulator, since).count("Set-EbSetting")

    # Throttled twice: the agent waits what Exchange asks and the third try lands.
    damage_rule()
    org.faults.throttle_cmdlets["Set-TransportRule"] = 2
    mark = len(simulator.winrm.log)
    report = restore(config, snap, "--yes", "--json", *kinds("transportRule")).json()
    (result,) = report["results"]
    assert result["status"] == "restored", result
    assert set_calls(mark) == 3
    assert sim.find(org, "TransportRule", "External sender banner")["Comments"] == ""

    # Throttled for longer than the retries: the object fails with one clear reason, the
    # rest of the restore goes on, and nothing was written twice.
    damage_rule()
    org.faults.throttle_cmdlets["Set-TransportRule"] = 10
    mark = len(simulator.winrm.log)
    report = restore(config, snap, "--yes", "--json", *kinds("transportRule"), code=10).json()
    (result,) = report["results"]
    assert result["status"] == "failed"
    assert "kept throttling Set-TransportRule after the agent's retries" in result["reason"]
    assert set_calls(mark) == 4  # the first try and three retries
    org.faults.throttle_cmdlets.clear()

    # New- ran, then its Set- was throttled: never repeated (the object would exist twice);
    # reported failed, and the next restore finishes the job.
    with org.lock:
        org.settings_of("Get-DkimSigningConfig")[:] = [
            d for d in org.settings_of("Get-DkimSigningConfig") if d["Name"] != CUSTOM_DOMAIN
        ]
    org.faults.throttle_cmdlets["Set-DkimSigningConfig"] = 1
    mark = len(simulator.winrm.log)
    report = restore(config, snap, "--yes", "--json", *kinds("dkimSigningConfig"), code=10).json()
    (result,) = [r for r in report["results"] if r["id"] == CUSTOM_DOMAIN]
    assert result["status"] == "failed" and "not retried" in result["reason"], result
    assert bridge_writes(simulator, mark).count("New-EbSetting") == 1
    assert [d["Enabled"] for d in org.settings_of("Get-DkimSigningConfig")
            if d["Name"] == CUSTOM_DOMAIN] == [False]  # fmt: skip
    report = restore(config, snap, "--yes", "--json", *kinds("dkimSigningConfig")).json()
    assert report["summary"]["failed"] == 0, report["results"]
    assert sim.find(org, "DkimSigningConfig", CUSTOM_DOMAIN)["Enabled"] is True


def test_simulated_cmdlets_refuse_what_exchange_online_refuses(env) -> None:
    """What keeps the drill honest: the simulated cmdlets fail where the real ones do."""
    _, handle, _ = env
    org = handle.exchange
    admin = Session(loaded=True, org=org, roles=None, ipps=True)  # Exchange Administrator
    # A parameter the cmdlet does not have (the built-in rule has no priority of its own).
    with pytest.raises(CmdletError, match="matches parameter name 'Priority'"):
        cmdlets.run(admin, "Set-ATPBuiltInProtectionRule",
                    {"Identity": "ATP Built-In Protection Rule", "Priority": 1})  # fmt: skip
    with pytest.raises(CmdletError, match="missing mandatory parameters: DomainName"):
        cmdlets.run(admin, "New-RemoteDomain", {"Name": "x"})
    with pytest.raises(CmdletError, match="isn't a verified domain"):
        cmdlets.run(admin, "New-AcceptedDomain", {"Name": "y", "DomainName": "unverified.example"})
    # Microsoft's own objects stay.
    with pytest.raises(CmdletError, match="can't be removed"):
        cmdlets.run(admin, "Remove-ProtectionAlert",
                    {"Identity": "Creation of forwarding/redirect rule", "Confirm": False})  # fmt: skip
    # Alert policies exist only in a Security & Compliance session.
    exchange_only = Session(loaded=True, org=org, roles=None)
    with pytest.raises(CmdletError, match="is not recognized"):
        cmdlets.run(exchange_only, "Set-ProtectionAlert", {"Identity": "x", "Disabled": True})
    # The least-privilege role group has no Role Management: role group writes are hidden.
    group = Session(loaded=True, org=org, roles={"Security Admin", "Transport Rules"})
    with pytest.raises(CmdletError, match="is not recognized"):
        cmdlets.run(group, "Update-RoleGroupMember", {"Identity": "Help Desk", "Members": None})
    with pytest.raises(CmdletError, match="couldn't be found"):  # Security Admin may switch
        cmdlets.run(group, "Enable-MalwareFilterRule", {"Identity": "nope", "Confirm": False})
    # Without Defender for Office 365 the Teams rule cmdlets vanish.
    org.set_defender_licensed(False)
    with pytest.raises(CmdletError, match="is not recognized"):
        cmdlets.run(admin, "New-TeamsProtectionPolicyRule",
                    {"Name": "t", "TeamsProtectionPolicy": "Teams Protection Policy"})  # fmt: skip
