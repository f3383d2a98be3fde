"""restore of Exchange Online and Defender through the CLI, the real pypsrp client and the
simulated bridge host: a drill that deletes and edits DLs (nested ones too), a mail-enabled
security group, policies, rules and singletons; dry-run, --prune, refusals and outcomes."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from agent.exchange import protocol
from agent.exchange.contract import load_contract
from agent.kinds import BY_NAME
from agent.restore.restorers import ready
from agent.simulator.exchange import dl
from agent.simulator.exchange import settings as sim_settings
from agent.simulator.exchange.state import ExchangeOrg
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import backup, restore, run, write_requests
from tests.drill_damage import flip
from tests.exchange_agent_helpers import exchange_agent
from tests.test_restore_e2e import WRITES

ADMIN = {"BypassSecurityGroupManagerCheck": True}
NASTY = "Q'uo\"te; $(Remove-Item C:\\ -Recurse) `whoami` |x\nsecond line"
NASTY_POLICY = "Phish 'VIP' $(Get-Process) `n; \"x\""
BRIDGE_KINDS = sorted(n for n in ready() if BY_NAME[n].channel == "bridge")
READ_FUNCTIONS = {"Connect-EbExchange", "Export-EbDistributionGroups", "Export-EbSettings"}
GROUP_KINDS = ("distributionGroup", "mailEnabledSecurityGroup")
# Stamps Exchange sets at every write (the restorers ignore them: not settings).
STAMPS = {"WhenChanged", "WhenChangedUTC"}


def tables() -> dict[str, Any]:
    from agent.restore.bridge_base import module_tables

    return module_tables()


@pytest.fixture
def env(tmp_path: Path):
    spec = {
        # No Entra admin role: Exchange Administrator comes with app_exchange_admin.
        "graph_permissions": [*READ_PERMISSIONS, *WRITES],
        "distribution_groups": 8,
        "mail_security_groups": 4,
    }
    kinds = ("user", "group", "groupMember", "groupOwner", "exchange", "defender")
    with exchange_agent(tmp_path, kinds=kinds, spec=spec) as (sim, handle, config, rt):
        yield sim, handle, str(config), tmp_path


def kind_args(*extra: str) -> list[str]:
    return [x for k in (*BRIDGE_KINDS, *extra) for x in ("--kind", k)]


# -- the tenant as Exchange holds it ----------------------------------------------------------


def groups(org: ExchangeOrg) -> dict[str, dict[str, Any]]:
    """Every DL / mail-enabled security group by Name: its settable properties and members."""
    out = {}
    with org.lock:
        for kind in ("MailUniversalDistributionGroup", "MailUniversalSecurityGroup"):
            for g in dl.get_groups(org, {"RecipientTypeDetails": kind, "ResultSize": "Unlimited"}):
                props = {p: g.get(p) for p in tables()["EbDlSettable"]}
                for key, value in props.items():
                    if isinstance(value, list):
                        props[key] = sorted(map(str, value))
                members = dl.get_members(org, {"Identity": g["Guid"], "ResultSize": "Unlimited"})
                props["Members"] = sorted(m["ExternalDirectoryObjectId"] for m in members)
                props["id"] = g["ExternalDirectoryObjectId"]
                out[g["Name"]] = props
    return out


def settings_state(org: ExchangeOrg) -> dict[str, dict[str, dict[str, Any]]]:
    """Every restorable settings object's settable properties, by kind and Identity."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in BRIDGE_KINDS:
        spec = BY_NAME[name]
        if spec.parent or name in GROUP_KINDS:
            continue
        noun = spec.extra["cmdlet"].removeprefix("Get-")
        allowed = tables()["EbSettableByCmdlet"].get(f"Set-{noun}")
        if allowed is None:  # entries created and removed, never set (the allow/block list)
            continue
        with org.lock:
            objects = org.snapshot_settings(spec.extra["cmdlet"])
        out[name] = {o["Identity"]: {p: o.get(p) for p in allowed if p in o} for o in objects}
    return out


def mapped(before: dict[str, dict[str, Any]], ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, props in before.items():
        props = dict(props)
        props["id"] = ids.get(props["id"], props["id"])
        props["Members"] = sorted(ids.get(m, m) for m in props["Members"])
        out[name] = props
    return out


# -- damage, as administrators would do it ------------------------------------------------------


def member_ids(org: ExchangeOrg, guid: str) -> list[str]:
    return sorted(
        m["ExternalDirectoryObjectId"]
        for m in dl.get_members(org, {"Identity": guid, "ResultSize": "Unlimited"})
    )


def prepare(org: ExchangeOrg, d: Any) -> dict[str, str]:
    """Before the snapshot: a DL nested in another, the nested one also in a cloud security
    group (Graph side), a nastily named DL and an anti-phishing policy with its rule."""
    with org.lock:
        dls = sorted(
            (r for r in org.dls.values() if r.recipient_type == "MailUniversalDistributionGroup"),
            key=lambda r: r.name,
        )
        parent, nested = dls[0], dls[1]
        wanted = [*member_ids(org, parent.guid), nested.group_id]
        dl.update_members(org, {"Identity": parent.guid, "Members": wanted, **ADMIN}, True, None)
        user = next(r["id"] for _, r in d.scan("user", 0) if r.get("mail"))
        nasty = dl.new_group(
            org,
            {"Name": NASTY, "Alias": "nasty-dl", "Type": "Distribution", "ManagedBy": [user],
             "Members": [user]},
        )[0]  # fmt: skip
        dl.set_group(
            org,
            {"Identity": nasty["Guid"], "MailTip": NASTY, "CustomAttribute3": NASTY, **ADMIN},
            True,
            None,
        )
        sim_settings.new_policy(
            org, "AntiPhishPolicy",
            {"Name": NASTY_POLICY, "EnableViaTag": False, "AdminDisplayName": NASTY},
        )  # fmt: skip
        sim_settings.new_rule(
            org, "AntiPhishRule",
            {"Name": NASTY_POLICY + " rule", "AntiPhishPolicy": NASTY_POLICY, "Priority": 0,
             "SentToMemberOf": [nested.name], "Comments": NASTY},
        )  # fmt: skip
        for family in ("HostedOutboundSpamFilter", "MalwareFilter", "SafeLinks", "SafeAttachment"):
            sim_settings.new_policy(org, f"{family}Policy", {"Name": f"Drill {family}"})
            sim_settings.new_rule(
                org, f"{family}Rule",
                {"Name": f"Drill {family}", f"{family}Policy": f"Drill {family}", "Priority": 0},
            )  # fmt: skip
    cloud = next(
        g
        for g in d.groups()
        if g["securityEnabled"] and not g["mailEnabled"] and not g["groupTypes"]
        and not g.get("membershipRule") and not g.get("onPremisesSyncEnabled")
    )  # fmt: skip
    d.add_member(cloud["id"], nested.group_id)
    return {
        "parent": parent.group_id,
        "nested": nested.group_id,
        "nasty": str(nasty["ExternalDirectoryObjectId"]),
        "cloud": cloud["id"],
    }


def damage(org: ExchangeOrg, d: Any, made: dict[str, str], rng: random.Random) -> dict[str, Any]:
    done: dict[str, Any] = {"deleted": [], "edited": {}}
    with org.lock:
        org.sync()
        by_id = org.dls
        # Deleted: the parent DL, the DL nested in it (and in a cloud group), the nasty one and a
        # mail-enabled security group.
        security = sorted(r.group_id for r in by_id.values()
                          if r.recipient_type == "MailUniversalSecurityGroup")  # fmt: skip
        gone = [made["parent"], made["nested"], made["nasty"], security[0]]
        for gid in gone:
            dl.remove_group(org, {"Identity": by_id[gid].guid, **ADMIN}, True, None)
        done["deleted"] = gone
        rest = sorted(gid for gid in org.dls if gid not in gone)
        users = sorted(r["id"] for _, r in d.scan("user", 0) if r.get("mail"))
        # Members of one DL changed, ManagedBy and Exchange-only properties of another.
        members = member_ids(org, org.dls[rest[0]].guid)
        changed = [*members[1:], rng.choice([u for u in users if u not in members])]
        dl.update_members(org, {"Identity": rest[0], "Members": changed, **ADMIN}, True, None)
        edited = org.dls[rest[1]]
        dl.set_group(
            org,
            {"Identity": edited.guid, "ManagedBy": [users[-1]], "MailTip": "defaced",
             "CustomAttribute1": "x", "MemberJoinRestriction": "Open",
             "HiddenFromAddressListsEnabled": True, "EmailAddresses":
             [f"SMTP:defaced-{edited.group_id[:8]}@contoso.onmicrosoft.com"], **ADMIN},
            True,
            None,
        )  # fmt: skip
        done["edited"]["dl"] = edited.group_id
        # Policies and rules: the anti-phishing policy with its rule deleted, a mail flow rule
        # deleted and another edited, the organization config and one object of every other
        # restorable settings kind changed.
        sim_settings.remove(org, "Get-AntiPhishPolicy", NASTY_POLICY)
        sim_settings.remove(org, "Get-TransportRule", "Block executable subjects")
        for name in BRIDGE_KINDS:
            spec = BY_NAME[name]
            # Built-in role groups take only member changes; tests/test_restore_exchange_
            # settings.py damages those and the allow/block list.
            if (
                spec.parent
                or name in GROUP_KINDS
                or name in ("roleGroup", "tenantAllowBlockListItem")
            ):
                continue
            noun = spec.extra["cmdlet"].removeprefix("Get-")
            objects = org.settings_of(spec.extra["cmdlet"])
            if not objects:
                continue
            target = objects[0]
            change = flip(target, tables()["EbSettableByCmdlet"][f"Set-{noun}"])
            assert change is not None, name
            sim_settings.set_(org, noun, {"Identity": target["Identity"], **change})
            done["edited"][name] = target["Identity"]
        # Created after the snapshot: listed, removed only with --prune.
        sim_settings.new_policy(org, "HostedContentFilterPolicy", {"Name": "Added later"})
        sim_settings.new_rule(
            org, "HostedContentFilterRule",
            {"Name": "Added later", "HostedContentFilterPolicy": "Added later", "Priority": 0},
        )  # fmt: skip
    return done


def bridge_writes(sim: Any, since: int) -> list[str]:
    """Module functions the bridge host ran after the first ``since`` that write."""
    out = []
    for entry in sim.winrm.log[since:]:
        (command,) = entry.invocation.commands
        if not command.is_script and command.text not in READ_FUNCTIONS:
            out.append(command.text)
    return out


def test_drill_restores_groups_members_policies_and_settings(env) -> None:
    sim, handle, config, tmp = env
    org, d = handle.exchange, handle.directory
    made = prepare(org, d)
    snap = backup(config)
    before_groups, before_settings = groups(org), settings_state(org)
    cloud_members = set(d.members(made["cloud"]))
    done = damage(org, d, made, random.Random(11))
    assert groups(org) != before_groups and settings_state(org) != before_settings
    kinds = kind_args("group", "groupMember", "groupOwner")

    # Dry run: the plan, and not one write cmdlet (nor Graph write) sent.
    mark, http_mark = len(sim.winrm.log), len(sim.log.items())
    plan = restore(config, snap, "--dry-run", "--json", *kinds).json()
    assert bridge_writes(sim, mark) == []
    assert write_requests(sim, http_mark) == []
    actions = {(a["kind"], a["id"]): a for a in plan["plan"]["actions"]}
    for gid in done["deleted"]:
        kind = "mailEnabledSecurityGroup" if gid not in made.values() else "distributionGroup"
        action = actions[(kind, gid)]
        assert action["action"] == "recreate" and "recycle bin" in action["reason"], action
        assert actions[("group", gid)]["action"] == "skip"  # Graph cannot write it
    assert actions[("antiPhishPolicy", NASTY_POLICY)]["action"] == "recreate"
    assert actions[("transportRule", "Block executable subjects")]["action"] == "recreate"
    later = actions[("hostedContentFilterPolicy", "Added later")]
    assert later["action"] == "skip" and "--prune" in later["reason"]

    report = restore(config, snap, "--yes", "--json", *kinds).json()
    assert report["summary"]["failed"] == 0, [
        r for r in report["results"] if r["status"] == "failed"
    ]
    ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
    assert set(done["deleted"]) <= set(ids) and set(ids.values()).isdisjoint(ids)

    # Live equals the snapshot on every restorable property: groups by name (recreated ones
    # under their new id), members through the id map, every settings object.
    after = groups(org)
    assert after == mapped(before_groups, ids)
    assert after[NASTY]["MailTip"] == NASTY  # names and values as they were, byte for byte
    assert set(d.members(made["cloud"])) == {ids.get(m, m) for m in cloud_members}
    now = settings_state(org)
    assert now.pop("hostedContentFilterPolicy").pop("Added later")  # created since: kept
    assert now.pop("hostedContentFilterRule").pop("Added later")
    want = dict(before_settings)
    want.pop("hostedContentFilterPolicy"), want.pop("hostedContentFilterRule")
    assert now == want
    policy = sim_settings.find(org, "AntiPhishPolicy", NASTY_POLICY)
    assert policy["AdminDisplayName"] == NASTY
    rule = sim_settings.find(org, "AntiPhishRule", NASTY_POLICY + " rule")
    assert rule["Comments"] == NASTY and rule["AntiPhishPolicy"] == NASTY_POLICY

    # Every difference left is in the report with its reason.
    listed = {(r["kind"], r["id"]): r["not_restored"] for r in report["results"]}
    live = run("diff", str(snap), "--live", "--config", config, "--json",
               *kind_args()).json()  # fmt: skip
    for obj in live["objects"]:
        if obj["status"] != "changed":
            assert obj["id"] in ids or obj["id"] in ids.values() or obj["id"] == "Added later", obj
            continue
        props = {c["path"].split("[")[0].split(".")[0] for c in obj["changes"]} - STAMPS
        key = (obj["kind"], next((o for o, n in ids.items() if n == obj["id"]), obj["id"]))
        assert props <= set(listed.get(key, {})), (obj, listed.get(key))

    # Values reached PowerShell only as parameters; the script text never varied.
    exported = set(load_contract(protocol.PS_DIR))
    carried: list[str] = []
    for entry in sim.winrm.log:
        (command,) = entry.invocation.commands
        if command.is_script:
            assert command.text == protocol.LOADER_SCRIPT
        else:
            assert command.text in exported and NASTY not in command.text
        carried += [json.dumps(value) for _, value in command.parameters]
    assert any(json.dumps(NASTY)[1:-1] in c for c in carried)

    # A second restore finds nothing to write; --prune removes what was created since.
    again = restore(config, snap, "--dry-run", "--json", *kinds).json()
    assert [a for a in again["plan"]["actions"] if a["action"] != "skip"] == []
    pruned = restore(config, snap, "--yes", "--json", "--prune", *kinds).json()
    assert pruned["summary"]["failed"] == 0, pruned["results"]
    removed = {(r["kind"], r["id"]) for r in pruned["results"] if r["action"] == "remove"}
    assert removed == {("hostedContentFilterPolicy", "Added later")}  # its rule goes with it
    names = {o["Name"] for o in org.settings_of("Get-HostedContentFilterPolicy")}
    assert "Added later" not in names and "Default" in names
    assert all(r["Name"] != "Added later" for r in org.settings_of("Get-HostedContentFilterRule"))


def test_outcomes_not_licensed_missing_role_and_unreachable_bridge(env) -> None:
    sim, handle, config, _ = env
    org = handle.exchange
    snap = backup(config)
    with org.lock:
        banner = sim_settings.find(org, "TransportRule", "External sender banner")
        sim_settings.set_(org, "TransportRule", {"Identity": banner["Identity"], "Comments": "x"})
        # An anti-phishing setting only Defender for Office 365 has, changed while licensed.
        default = sim_settings.find(org, "AntiPhishPolicy", "Office365 AntiPhish Default")
        level = int(default["PhishThresholdLevel"])
        sim_settings.set_(org, "AntiPhishPolicy",
                          {"Identity": default["Identity"], "PhishThresholdLevel": level + 1})  # fmt: skip

    # Not licensed any more: the Defender for Office 365 kinds are one skip each with that
    # reason, the anti-phishing write is refused as not licensed and skipped, the rest restored.
    org.set_defender_licensed(False)
    report = restore(config, snap, "--yes", "--json", *kind_args()).json()
    results = {(r["kind"], r["id"]): r for r in report["results"]}
    assert report["summary"]["failed"] == 0, report["results"]
    for kind in ("safeLinksPolicy", "safeAttachmentRule", "atpPolicyForO365"):
        assert results[(kind, "*")]["status"] == "skipped", results[(kind, "*")]
        assert "not licensed" in results[(kind, "*")]["reason"]
    phish = results[("antiPhishPolicy", "Office365 AntiPhish Default")]
    assert phish["status"] == "skipped" and phish["reason"].startswith("not licensed"), phish
    assert results[("transportRule", "External sender banner")]["status"] == "restored"
    assert sim_settings.find(org, "TransportRule", "External sender banner")["Comments"] == ""

    # Without an Exchange role every bridge kind is one skip saying so, and nothing is written.
    org.set_defender_licensed(True)
    org.app_exchange_admin = False
    mark = len(sim.winrm.log)
    report = restore(config, snap, "--yes", "--json", *kind_args()).json()
    assert {r["status"] for r in report["results"]} == {"skipped"}
    for r in report["results"]:  # a hidden Defender for Office 365 cmdlet reads as unlicensed
        want = (
            "not licensed" if BY_NAME[r["kind"]].extra.get("licence") else "missing Exchange role"
        )
        assert want in r["reason"], r
    assert bridge_writes(sim, mark) == []

    # The bridge host unreachable: one clear reason per kind, never a traceback.
    org.app_exchange_admin = True
    path = Path(config)
    text = path.read_text()
    path.write_text(text.replace(f"{sim.base_url}/wsman", "https://127.0.0.1:9/wsman"))
    report = restore(config, snap, "--yes", "--json", *kind_args()).json()
    reasons = {r["reason"] for r in report["results"]}
    assert {r["status"] for r in report["results"]} == {"skipped"}
    assert len(reasons) == 1 and "Cannot reach the bridge host 127.0.0.1:9" in reasons.pop()


def test_merge_brings_back_only_what_was_emptied_or_removed(env) -> None:
    sim, handle, config, _ = env
    org, d = handle.exchange, handle.directory
    with org.lock:
        org.sync()
        record = sorted(org.dls.values(), key=lambda r: r.name)[0]
        users = sorted(r["id"] for _, r in d.scan("user", 0) if r.get("mail"))
        members = [u for u in member_ids(org, record.guid) if u in users][:2] or users[:2]
        dl.update_members(org, {"Identity": record.guid, "Members": members, **ADMIN}, True, None)
        dl.set_group(org, {"Identity": record.guid, "MailTip": "kept?", "CustomAttribute1": "a",
                           **ADMIN}, True, None)  # fmt: skip
    snap = backup(config)
    newcomer = next(u for u in users if u not in members)
    with org.lock:
        # Emptied, changed, a member removed and another added since the snapshot.
        dl.set_group(org, {"Identity": record.guid, "MailTip": None, "CustomAttribute1": "b",
                           **ADMIN}, True, None)  # fmt: skip
        wanted = [*members[1:], newcomer]
        dl.update_members(org, {"Identity": record.guid, "Members": wanted, **ADMIN}, True, None)
    kinds = ("--kind", "distributionGroup", "--kind", "distributionGroupMember")
    report = restore(config, snap, "--yes", "--json", "--mode", "merge", *kinds).json()
    assert report["summary"]["failed"] == 0, report["results"]
    now = {
        g["ExternalDirectoryObjectId"]: g for g in dl.get_groups(org, {"ResultSize": "Unlimited"})
    }
    group = now[record.group_id]
    assert group["MailTip"] == "kept?" and group["CustomAttribute1"] == "b"
    assert set(member_ids(org, record.guid)) == {*members, newcomer}
    # Overwrite makes it equal to the snapshot.
    report = restore(config, snap, "--yes", "--json", *kinds).json()
    assert report["summary"]["failed"] == 0, report["results"]
    group = dl.get_groups(org, {"Identity": record.guid})[0]
    assert group["CustomAttribute1"] == "a" and set(member_ids(org, record.guid)) == set(members)
