"""The Exchange cmdlets the module calls, as one connected session sees them.

Before anything runs: the cmdlet must exist for this session — Exchange Online shows only the
cmdlets the tenant is licensed for (Defender for Office 365) and the caller holds a role for,
and Get-ProtectionAlert only in a Security & Compliance session — then throttling and the
cmdlet's simulated latency apply (REST cmdlets give up after ``rest_timeout_s``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.simulator.exchange import dl, errors, role_assignments, settings
from agent.simulator.exchange import settings_restore as restore
from agent.simulator.exchange.rbac import required_role
from agent.simulator.exchange.state import ExchangeOrg

# Nouns whose cmdlets (every verb) exist only with Defender for Office 365.
MDO_NOUNS = {
    "SafeLinksPolicy",
    "SafeLinksRule",
    "SafeAttachmentPolicy",
    "SafeAttachmentRule",
    "AtpPolicyForO365",
    "ATPBuiltInProtectionRule",
    "ATPProtectionPolicyRule",
    "TeamsProtectionPolicy",
    "TeamsProtectionPolicyRule",
}
BYPASS_ROLE = "Security Group Creation and Membership"
# Security & Compliance PowerShell only (Connect-IPPSSession).
SCC_NOUNS = {"ProtectionAlert"}
_DL = {
    "Get-DistributionGroup": "get",
    "Get-DistributionGroupMember": "members",
    "New-DistributionGroup": "new",
    "Set-DistributionGroup": "set",
    "Remove-DistributionGroup": "remove",
    "Update-DistributionGroupMember": "update",
}

_ROLE_ASSIGNMENT = {
    "Get": role_assignments.get,
    "New": role_assignments.new,
    "Set": role_assignments.set_,
    "Remove": role_assignments.remove,
}


@dataclass
class Session:
    """One runspace of the bridge host: the loaded module and its Exchange connection."""

    loaded: bool = False
    module_sha: str = ""
    org: ExchangeOrg | None = None
    roles: set[str] | None = None  # None = every role (Exchange/Global Administrator)
    caller: str | None = None  # object id of a signed-in user (ManagedBy checks)
    ipps: bool = False
    delay_s: float = 0.0  # simulated time the current call's cmdlets took
    calls: list[str] = field(default_factory=list)  # cmdlets run in the current call
    # Export-EbDistributionGroups' open listings ($script:EbGroupCursors), oldest first.
    group_cursors: dict[str, dict[str, Any]] = field(default_factory=dict)


def visible(session: Session, org: ExchangeOrg, cmdlet: str) -> bool:
    noun = cmdlet.split("-", 1)[1]
    if noun in MDO_NOUNS and not org.defender_licensed:
        return False
    if noun in SCC_NOUNS:
        return session.ipps and session.roles is None
    return session.roles is None or required_role(cmdlet) in session.roles


def run(session: Session, cmdlet: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one Exchange cmdlet; raises ``errors.CmdletError`` as the real one would fail."""
    org = session.org
    if org is None or not visible(session, org, cmdlet):
        raise errors.not_recognized(cmdlet)
    session.calls.append(cmdlet)
    with org.lock:
        retry_after = org.throttle_check()
        if org.faults.throttle_cmdlets.get(cmdlet, 0) > 0:
            org.faults.throttle_cmdlets[cmdlet] -= 1
            retry_after = org.faults.throttle_retry_after_s
    if retry_after is not None:
        raise errors.throttled(retry_after)
    latency = org.faults.latency_s.get(cmdlet, 0.0)
    if latency >= org.faults.rest_timeout_s:
        session.delay_s += org.faults.rest_timeout_s
        raise errors.timed_out(org.faults.rest_timeout_s)
    session.delay_s += latency
    with org.lock:
        return _dispatch(session, org, cmdlet, params)


def _dispatch(
    session: Session, org: ExchangeOrg, cmdlet: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    # -BypassSecurityGroupManagerCheck on distribution and mail-enabled security groups needs
    # Organization Management or this role (Role Management is what role groups need).
    can_bypass = session.roles is None or BYPASS_ROLE in session.roles
    action = _DL.get(cmdlet)
    if action == "get":
        return dl.get_groups(org, params)
    if action == "members":
        return dl.get_members(org, params)
    if action == "new":
        return dl.new_group(org, params)
    if action == "set":
        return dl.set_group(org, params, can_bypass, session.caller)
    if action == "remove":
        return dl.remove_group(org, params, can_bypass, session.caller)
    if action == "update":
        return dl.update_members(org, params, can_bypass, session.caller)
    verb, noun = cmdlet.split("-", 1)
    restore.check_parameters(cmdlet, params)
    if verb in ("Enable", "Disable"):
        return restore.set_state(org, verb, noun, params)
    if cmdlet == "Set-RoleGroup":
        return restore.set_role_group(org, params)
    if cmdlet == "Update-RoleGroupMember":
        return restore.update_role_group_member(org, params)
    if cmdlet == "New-TenantAllowBlockListItems":
        return restore.new_allow_block(org, params)
    if cmdlet == "Remove-TenantAllowBlockListItems":
        return restore.remove_allow_block(org, params)
    if noun == "ManagementRoleAssignment":
        return _ROLE_ASSIGNMENT[verb](org, params)
    if cmdlet == "New-ServicePrincipal":
        return settings.new_service_principal(org, params)
    if cmdlet == "New-RoleGroup":
        return settings.new_role_group(org, params)
    if cmdlet == "Add-RoleGroupMember":
        return settings.add_role_group_member(org, params)
    if verb == "Get":
        return settings.get(org, noun, params)
    if verb == "Set":
        return settings.set_(org, noun, params)
    if cmdlet == "New-TransportRule":
        return settings.new_transport_rule(org, params)
    if verb == "Remove":
        return settings.remove_(org, noun, params)
    if verb == "New" and f"{noun.removesuffix('Rule')}Policy" in settings._POLICY_FACTORIES:
        return settings.new_rule(org, noun, params)
    if verb == "New" and noun not in settings._POLICY_FACTORIES:
        return restore.new_object(org, noun, params)
    if verb == "New":
        return settings.new_policy(org, noun, params)
    raise errors.not_recognized(cmdlet)
