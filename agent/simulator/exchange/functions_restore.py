"""The module's restore functions beyond groups and Set-EbSetting (New-EbSetting,
Set-EbRuleState, Update-EbRoleGroupMember, the Tenant Allow/Block List), step for step as
ps_scripts/EntraBackup.Exchange.psm1 runs them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from agent.simulator.exchange.binding import Bound
from agent.simulator.exchange.envelope import Envelope, _string, _test_properties


def new_setting(env: Envelope, bound: Bound) -> None:
    values = bound.values
    cmdlet = values["Cmdlet"]
    set_cmdlet = "Set-" + cmdlet[4:]
    settable = {k.lower(): v for k, v in env.module.tables["EbSettableByCmdlet"].items()}
    new_table = {k.lower(): v for k, v in env.module.tables["EbNewByCmdlet"].items()}
    properties = _test_properties(
        env, cmdlet, list(new_table[cmdlet.lower()]), values["Properties"]
    )
    later = _test_properties(
        env, set_cmdlet, list(settable.get(set_cmdlet.lower(), [])), values["SetProperties"]
    )
    if properties is None or later is None:
        return
    created = env.invoke(cmdlet, dict(properties))
    if created is None:
        return
    identity = _string(created[0] if created else None, "Identity")
    if later:
        env.invoke(set_cmdlet, {**later, "Identity": identity})
    env.items.append({"cmdlet": cmdlet, "identity": identity})


def set_rule_state(env: Envelope, bound: Bound) -> None:
    env.invoke(bound.values["Cmdlet"], {"Identity": bound.values["Identity"], "Confirm": False})


def replace_members(env: Envelope, bound: Bound, cmdlet: str) -> None:
    """Update-<X>Member: the whole list at once (an empty list clears it, as $null)."""
    members = bound.values["Members"]
    parameters = {
        "Identity": bound.values["Identity"],
        "Members": None if len(members) == 0 else list(members),
        "BypassSecurityGroupManagerCheck": True,
        "Confirm": False,
    }
    env.invoke(cmdlet, parameters)


def update_role_group_member(env: Envelope, bound: Bound) -> None:
    replace_members(env, bound, "Update-RoleGroupMember")


def new_allow_block_item(env: Envelope, bound: Bound) -> None:
    values = bound.values
    parameters: dict[str, Any] = {"ListType": values["ListType"], "Entries": [values["Value"]]}
    parameters[values["Action"]] = True
    if "Notes" in bound.bound:
        parameters["Notes"] = values["Notes"]
    if "ExpirationDate" in bound.bound:
        parameters["ExpirationDate"] = values["ExpirationDate"].astimezone(dt.UTC)
    else:
        parameters["NoExpiration"] = True
    created = env.invoke("New-TenantAllowBlockListItems", parameters)
    if created is not None:
        env.items.append(
            {
                "identity": _string(created[0] if created else None, "Identity"),
                "value": values["Value"],
            }
        )


def remove_allow_block_item(env: Envelope, bound: Bound) -> None:
    parameters = {"ListType": bound.values["ListType"], "Ids": [bound.values["Id"]]}
    env.invoke("Remove-TenantAllowBlockListItems", parameters)
