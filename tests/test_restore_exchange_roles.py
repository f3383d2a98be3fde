"""Restore of Exchange role assignments and role groups' roles, through the CLI, the real
pypsrp client and the simulated bridge host: assignments removed, disabled, rescoped or added
by an administrator (to a role group, a user, the default role assignment policy), a custom
role group's roles changed, another custom role group deleted with its assignments; restore
brings back what the snapshot had (a recreated assignment under the name Exchange gave it is
in the id map), lists what was added since until --prune, and reports the built-in role
groups' assignments as Microsoft's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.simulator.exchange import cmdlets
from agent.simulator.exchange import role_assignments as rbac
from agent.simulator.exchange import settings as sim
from agent.simulator.exchange.cmdlets import Session
from agent.simulator.exchange.errors import CmdletError
from agent.simulator.exchange.state import ExchangeOrg
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import backup, cli, restore, write_requests
from tests.exchange_agent_helpers import exchange_agent
from tests.test_restore_e2e import WRITES
from tests.test_restore_exchange import bridge_writes

KINDS = ["--kind", "roleGroup", "--kind", "managementRoleAssignment"]
STAMPS = {"Guid", "WhenChanged", "WhenChangedUTC", "WhenCreated", "WhenCreatedUTC"}
BUILT_IN = "Transport Rules-Organization Management"
POLICY = "MyDistributionGroups-Default Role Assignment Policy"


@pytest.fixture
def env(tmp_path: Path):
    spec = {"graph_permissions": [*READ_PERMISSIONS, *WRITES]}
    with exchange_agent(tmp_path, kinds=("exchange",), spec=spec) as (s, h, c, _):
        yield s, h, str(c)


def assignments(org: ExchangeOrg) -> dict[str, dict[str, Any]]:
    with org.lock:
        return {
            a["Name"]: {k: v for k, v in a.items() if k not in STAMPS} for a in rbac.get(org, {})
        }


def roles(org: ExchangeOrg) -> dict[str, list[str]]:
    with org.lock:
        groups = sim.get(org, "RoleGroup", {})
    return {g["Name"]: sorted(g["Roles"]) for g in groups}


def prepare(org: ExchangeOrg) -> str:
    """Before the snapshot: what an administrator delegated beyond the defaults."""
    user = next(r["userPrincipalName"] for _, r in org.directory.scan("user", 0) if r.get("mail"))
    with org.lock:
        rbac.new_role_group(org, {"Name": "Drill helpdesk", "Roles": ["View-Only Recipients",
                                  "Mail Recipients"], "Description": "Tier 1"})  # fmt: skip
        rbac.set_(org, {"Identity": "Mail Recipients-Drill helpdesk",
                        "CustomRecipientWriteScope": "Sales recipients"})  # fmt: skip
        # A role group whose one assignment has its own name, scope and state.
        rbac.new_role_group(org, {"Name": "Drill auditors", "Description": "Audit"})
        rbac.new(org, {"Name": "Auditors read logs", "Role": "View-Only Audit Logs",
                       "SecurityGroup": "Drill auditors",
                       "CustomRecipientWriteScope": "Finance recipients"})  # fmt: skip
        rbac.set_(org, {"Identity": "Auditors read logs", "Enabled": False})
        rbac.new(org, {"Name": "Tips for one user", "Role": "Mail Tips", "User": user,
                       "RecipientRelativeWriteScope": "MyGAL"})  # fmt: skip
        rbac.new(org, {"Role": "MyDistributionGroups", "Policy": "Default Role Assignment Policy"})
        # A mail-enabled security group given a role directly (-SecurityGroup takes it too).
        org.sync()
        sg = next(
            r.name for r in org.dls.values() if r.recipient_type == "MailUniversalSecurityGroup"
        )
        rbac.new(
            org, {"Name": "Tips for a security group", "Role": "Mail Tips", "SecurityGroup": sg}
        )
    return user


def damage(org: ExchangeOrg, user: str) -> None:
    with org.lock:
        rbac.remove(org, {"Identity": "Tips for one user"})
        rbac.remove(org, {"Identity": "Tips for a security group"})
        rbac.set_(org, {"Identity": POLICY, "Enabled": False})
        rbac.set_(org, {"Identity": "Mail Recipients-Drill helpdesk",
                        "CustomRecipientWriteScope": "Finance recipients"})  # fmt: skip
        # A role taken from a custom role group, another given to it.
        rbac.remove(org, {"Identity": "View-Only Recipients-Drill helpdesk"})
        rbac.new(org, {"Role": "Distribution Groups", "SecurityGroup": "Drill helpdesk"})
        rbac.remove_role_group(org, "Drill auditors")
        rbac.remove(org, {"Identity": BUILT_IN})
        rbac.new(org, {"Name": "Added later", "Role": "Mail Recipients", "User": user})


def test_drill_restores_role_assignments_and_role_group_roles(env) -> None:
    simulator, handle, config = env
    org = handle.exchange
    user = prepare(org)
    snap = backup(config)
    before, before_roles = assignments(org), roles(org)
    damage(org, user)

    mark, http_mark = len(simulator.winrm.log), len(simulator.log.items())
    plan = restore(config, snap, "--dry-run", "--json", *KINDS).json()
    assert bridge_writes(simulator, mark) == [] and write_requests(simulator, http_mark) == []
    actions = {(a["kind"], a["id"]): a for a in plan["plan"]["actions"]}

    def action(name: str, kind: str = "managementRoleAssignment") -> dict[str, Any]:
        return actions[(kind, name)]

    assert action("Tips for one user")["action"] == "recreate"
    assert "-User" in action("Tips for one user")["reason"]
    assert "-SecurityGroup" in action("Tips for a security group")["reason"]
    assert action(POLICY)["action"] == "patch" and action(POLICY)["properties"] == ["Enabled"]
    scoped = action("Mail Recipients-Drill helpdesk")
    assert scoped["action"] == "patch" and "CustomRecipientWriteScope" in scoped["properties"]
    assert "with its role group 'Drill auditors'" in action("Auditors read logs")["reason"]
    built_in = action(BUILT_IN)
    assert built_in["action"] == "skip" and "by design" in built_in["reason"]
    assert "--prune" in action("Added later")["reason"]
    given = action("Distribution Groups-Drill helpdesk")
    assert given["action"] == "skip" and "role group's roles removes it" in given["reason"]
    assert action("Drill helpdesk", "roleGroup")["action"] == "patch"
    assert action("Drill auditors", "roleGroup")["action"] == "recreate"

    report = restore(config, snap, "--yes", "--json", *KINDS).json()
    failed = [r for r in report["results"] if r["status"] == "failed"]
    assert failed == [], [(r["id"], r["status"], r["reason"], r["not_restored"]) for r in failed]
    after = assignments(org)
    # The recreated role group's assignment: the one New-RoleGroup -Roles made, under the
    # name Exchange gave it, set to the snapshot's scope and state; the id map says so.
    renamed = after.pop("View-Only Audit Logs-Drill auditors")
    was = before.pop("Auditors read logs")
    assert {k: v for k, v in renamed.items() if k not in ("Identity", "Name")} == {
        k: v for k, v in was.items() if k not in ("Identity", "Name")
    }
    mapped = {(o["kind"], o["old"]): o["new"] for o in report["id_map"]["objects"]}
    assert mapped[("managementRoleAssignment", "Auditors read logs")] == (
        "View-Only Audit Logs-Drill auditors"
    )
    # Everything else as it was, but what is listed: the built-in role group's assignment
    # (Microsoft's) and the one added since (kept without --prune).
    assert after.pop("Added later")["Role"] == "Mail Recipients"
    assert BUILT_IN not in after
    before.pop(BUILT_IN)
    assert after == before
    assert roles(org) == {**before_roles, "Organization Management": sorted(
        r for r in before_roles["Organization Management"] if r != "Transport Rules")}  # fmt: skip

    # A second restore finds nothing to write; --prune removes what was added since.
    again = restore(config, snap, "--dry-run", "--json", *KINDS).json()
    assert [a for a in again["plan"]["actions"] if a["action"] != "skip"] == []
    pruned = restore(config, snap, "--yes", "--json", "--prune", *KINDS).json()
    assert pruned["summary"]["failed"] == 0, pruned["results"]
    assert {(r["id"], r["action"]) for r in pruned["results"]} >= {("Added later", "remove")}
    assert "Added later" not in assignments(org)


def test_a_role_group_removed_for_good_fails_its_assignments_with_exchanges_reason(env) -> None:
    """Restoring assignments alone while their role group is gone: Exchange refuses the
    assignee; the restore says so per assignment (a failure, not a missing permission)."""
    _, handle, config = env
    org = handle.exchange
    prepare(org)
    snap = backup(config)
    with org.lock:
        rbac.remove_role_group(org, "Drill helpdesk")
    report = restore(config, snap, "--yes", "--json", "--kind", "managementRoleAssignment",
                     code=10).json()  # fmt: skip
    failed = {r["id"]: r["reason"] for r in report["results"] if r["status"] == "failed"}
    assert set(failed) == {"Mail Recipients-Drill helpdesk", "View-Only Recipients-Drill helpdesk"}
    assert all("'Drill helpdesk' couldn't be found" in why for why in failed.values()), failed
    # With the role group in the same restore, it comes back with its roles and scopes.
    report = restore(config, snap, "--yes", "--json", *KINDS).json()
    assert report["summary"]["failed"] == 0, report["results"]
    with org.lock:
        (scoped,) = rbac.get(org, {"Role": "Mail Recipients", "RoleAssignee": "Drill helpdesk"})
    assert scoped["CustomRecipientWriteScope"] == "Sales recipients"


def test_without_role_management_role_writes_are_skipped_with_the_role_named(env) -> None:
    """The least-privilege role group (New-EbRoleGroupSetup) leaves Role Management out: the
    role assignment cmdlets do not exist for the app, and restore says which role it lacks."""
    _, handle, config = env
    org = handle.exchange
    prepare(org)
    snap = backup(config)
    with org.lock:
        rbac.set_(org, {"Identity": POLICY, "Enabled": False})
        sp = "0f0e0d0c-0b0a-4909-8807-060504030201"
        org.service_principals[sp] = {"AppId": handle.client_id, "ObjectId": sp}
        rbac.new_role_group(org, {"Name": "Backup app", "Members": [sp],
                                  "Roles": ["View-Only Configuration", "View-Only Recipients"]})  # fmt: skip
    org.app_exchange_admin = False
    report = restore(config, snap, "--yes", "--json", "--kind", "managementRoleAssignment").json()
    (result,) = [r for r in report["results"] if r["id"] == POLICY]
    assert result["status"] == "skipped" and "Set-ManagementRoleAssignment" in result["reason"]
    assert (
        org.role_assignments
        and not next(a for a in org.role_assignments if a["Name"] == POLICY)["Enabled"]
    )
    written = cli("permissions", "--scope", "exchange", "--write", "--json").json()["exchange"]
    assert "managementRoleAssignment" in written["entra_role_only"]
    assert written["entra_role_only_exchange_role"] == "Role Management"


def test_simulated_role_assignment_cmdlets_refuse_what_exchange_online_refuses(env) -> None:
    _, handle, _ = env
    org = handle.exchange
    admin = Session(loaded=True, org=org, roles=None)
    new = "New-ManagementRoleAssignment"
    with pytest.raises(CmdletError, match="object 'Mail Wizards' couldn't be found"):
        cmdlets.run(admin, new, {"Role": "Mail Wizards", "SecurityGroup": "Help Desk"})
    with pytest.raises(CmdletError, match="object 'No such group' couldn't be found"):
        cmdlets.run(admin, new, {"Role": "Mail Recipients", "SecurityGroup": "No such group"})
    with pytest.raises(CmdletError, match="already assigns the role 'View-Only Recipients'"):
        cmdlets.run(admin, new, {"Role": "View-Only Recipients", "SecurityGroup": "Help Desk"})
    with pytest.raises(CmdletError, match='"View-Only Recipients-Help Desk" already exists'):
        cmdlets.run(admin, new, {"Name": "View-Only Recipients-Help Desk",
                                 "Role": "Mail Recipients", "SecurityGroup": "Help Desk"})  # fmt: skip
    with pytest.raises(CmdletError, match="end-user role"):
        cmdlets.run(admin, new, {"Role": "MyBaseOptions", "SecurityGroup": "Help Desk"})
    with pytest.raises(CmdletError, match="object 'Nowhere' couldn't be found"):
        cmdlets.run(admin, new, {"Role": "Mail Recipients", "SecurityGroup": "Help Desk",
                                 "CustomRecipientWriteScope": "Nowhere"})  # fmt: skip
    with pytest.raises(CmdletError, match="can't be used together"):
        cmdlets.run(admin, new, {"Role": "Mail Recipients", "SecurityGroup": "Help Desk",
                                 "CustomRecipientWriteScope": "Sales recipients",
                                 "RecipientRelativeWriteScope": "MyGAL"})  # fmt: skip
    with pytest.raises(CmdletError, match="matches parameter name 'Roles'"):
        cmdlets.run(admin, new, {"Roles": ["Mail Recipients"], "SecurityGroup": "Help Desk"})
    # A disabled assignment grants nothing: its holders lose the role's cmdlets.
    sp = "0f0e0d0c-0b0a-4909-8807-060504030201"
    org.service_principals[sp] = {"AppId": "x", "ObjectId": sp}
    with org.lock:
        rbac.new_role_group(org, {"Name": "Readers", "Roles": ["View-Only Configuration"],
                                  "Members": [sp]})  # fmt: skip
        assert org._roles_of({sp}) == {"View-Only Configuration"}
        rbac.set_(org, {"Identity": "View-Only Configuration-Readers", "Enabled": False})
        assert org._roles_of({sp}) == set()
