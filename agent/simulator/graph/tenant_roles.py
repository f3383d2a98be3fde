"""Built-in Entra role definitions (real template ids and representative resource actions),
custom roles, and PIM eligibility for a generated tenant."""

from __future__ import annotations

import random
from typing import Any

from agent.simulator.graph.directory import Directory, iso
from agent.simulator.graph.gen_objects import ROLE_TEMPLATES
from agent.simulator.graph.generator import EPOCH, new_id
from agent.simulator.graph.tenant_store import TenantStore, assignment_id

# Template id -> (description, allowed resource actions); a representative subset of each
# role's real permissions (Microsoft Entra built-in roles reference).
BUILT_IN: dict[str, tuple[str, tuple[str, ...]]] = {
    "Global Administrator": (
        ("Can manage all aspects of Microsoft Entra ID and Microsoft services that use "
        "Microsoft Entra identities."),
        ("microsoft.directory/applications/allProperties/allTasks",
         "microsoft.directory/users/allProperties/allTasks",
         "microsoft.directory/groups/allProperties/allTasks",
         "microsoft.directory/roleAssignments/allProperties/allTasks",
         "microsoft.directory/organization/allProperties/allTasks"),
    ),
    "Exchange Administrator": (
        "Can manage all aspects of the Exchange product.",
        ("microsoft.directory/groups/unified/create", "microsoft.office365.exchange/allEntities/basic/allTasks"),
    ),
    "Application Administrator": (
        "Can create and manage all aspects of app registrations and enterprise apps.",
        ("microsoft.directory/applications/create", "microsoft.directory/applications/credentials/update",
         "microsoft.directory/servicePrincipals/create", "microsoft.directory/servicePrincipals/credentials/update"),
    ),
    "Cloud Application Administrator": (
        ("Can create and manage all aspects of app registrations and enterprise apps except "
        "App Proxy."),
        ("microsoft.directory/applications/create", "microsoft.directory/servicePrincipals/create",
         "microsoft.directory/servicePrincipals/appRoleAssignedTo/update"),
    ),
    "Security Administrator": (
        ("Can read security information and reports, and manage configuration in Microsoft "
        "Entra ID and Office 365."),
        ("microsoft.directory/policies/create", "microsoft.directory/conditionalAccessPolicies/create",
         "microsoft.directory/identityProtection/allProperties/update"),
    ),
    "Global Reader": (
        "Can read everything that a Global Administrator can, but not update anything.",
        ("microsoft.directory/applications/allProperties/read", "microsoft.directory/users/allProperties/read",
         "microsoft.directory/groups/allProperties/read"),
    ),
    "User Administrator": (
        ("Can manage all aspects of users and groups, including resetting passwords for "
        "limited admins."),
        ("microsoft.directory/users/create", "microsoft.directory/users/delete",
         "microsoft.directory/users/password/update", "microsoft.directory/groups/create"),
    ),
    "Groups Administrator": (
        ("Members of this role can create/manage groups, create/manage groups settings like "
        "naming and expiration policies, and view groups activity and audit reports."),
        ("microsoft.directory/groups/create", "microsoft.directory/groups/members/update",
         "microsoft.directory/groupSettings/allProperties/allTasks"),
    ),
    "Privileged Role Administrator": (
        ("Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged "
        "Identity Management."),
        ("microsoft.directory/roleAssignments/allProperties/allTasks",
         "microsoft.directory/roleDefinitions/allProperties/allTasks",
         "microsoft.directory/privilegedIdentityManagement/allProperties/allTasks"),
    ),
    "Conditional Access Administrator": (
        "Can manage Conditional Access capabilities.",
        ("microsoft.directory/conditionalAccessPolicies/create",
         "microsoft.directory/namedLocations/create"),
    ),
    "Helpdesk Administrator": (
        "Can reset passwords for non-administrators and Helpdesk Administrators.",
        ("microsoft.directory/users/password/update", "microsoft.directory/users/invalidateAllRefreshTokens"),
    ),
    "Directory Readers": (
        ("Can read basic directory information. Commonly used to grant directory read access "
        "to applications and guests."),
        ("microsoft.directory/users/standard/read", "microsoft.directory/groups/standard/read"),
    ),
    "Authentication Administrator": (
        ("Can access to view, set and reset authentication method information for any "
        "non-admin user."),
        ("microsoft.directory/users/authenticationMethods/create", "microsoft.directory/users/password/update"),
    ),
    "License Administrator": (
        "Can manage product licenses on users and groups.",
        ("microsoft.directory/users/assignLicense", "microsoft.directory/groups/assignLicense"),
    ),
    "Billing Administrator": (
        "Can perform common billing related tasks like updating payment information.",
        ("microsoft.directory/organization/basic/update", "microsoft.commerce.billing/allEntities/allProperties/allTasks"),
    ),
    "Security Reader": (
        "Can read security information and reports in Microsoft Entra ID and Office 365.",
        ("microsoft.directory/auditLogs/allProperties/read", "microsoft.directory/signInReports/allProperties/read"),
    ),
}  # fmt: skip
MORE_TEMPLATES = {
    "Authentication Administrator": "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    "License Administrator": "4d6ac14f-3453-41d0-bef9-a3e0c569773a",
    "Billing Administrator": "b0f54661-2d74-4c50-afa3-1ec803f12efe",
    "Security Reader": "5d6b6bb7-de71-4623-b4af-96380a352509",
}
TEMPLATES = {**ROLE_TEMPLATES, **MORE_TEMPLATES}
CUSTOM = (
    ("Helpdesk Tier 1", "Reset passwords and read sign-in state of ordinary users.",
     ("microsoft.directory/users/password/update", "microsoft.directory/users/standard/read")),
    ("App Owner Manager", "Manage owners and credentials of app registrations.",
     ("microsoft.directory/applications/owners/update", "microsoft.directory/applications/credentials/update")),
    ("Device Lifecycle", "Enable, disable and delete devices.",
     ("microsoft.directory/devices/disable", "microsoft.directory/devices/enable",
      "microsoft.directory/devices/delete")),
    ("Group Naming Steward", "Update basic properties of groups.",
     ("microsoft.directory/groups/basic/update", "microsoft.directory/groups/classification/update")),
    ("Guest Sponsor", "Invite guests and manage their sponsors.",
     ("microsoft.directory/users/inviteGuest", "microsoft.directory/users/sponsors/update")),
)  # fmt: skip


def permissions(actions: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    return [{"allowedResourceActions": list(actions), "condition": None}]


def custom_role(rng: random.Random, name: str, description: str, actions: Any) -> dict[str, Any]:
    role_id = new_id(rng)
    return {
        "id": role_id,
        "description": description,
        "displayName": name,
        "isBuiltIn": False,
        "isEnabled": True,
        "resourceScopes": ["/"],
        "rolePermissions": permissions(actions),
        "templateId": role_id,  # a custom role is its own template
        "version": None,
    }


def generate_roles(d: Directory, rng: random.Random, store: TenantStore, users: int) -> None:
    for name, template in TEMPLATES.items():
        description, actions = BUILT_IN[name]
        store.role_definitions[template] = {
            "id": template,
            "description": description,
            "displayName": name,
            "isBuiltIn": True,
            "isEnabled": True,
            "resourceScopes": ["/"],
            "rolePermissions": permissions(actions),
            "templateId": template,
            "version": "1",
        }
    n_custom = min(len(CUSTOM), 2 + users // 2000)
    customs = [custom_role(rng, *c) for c in CUSTOM[:n_custom]]
    for row in customs:
        store.role_definitions[row["id"]] = row
    members = [r["id"] for _, r in d.scan("user", 0) if r.get("userType") == "Member"]
    units = [r["id"] for _, r in d.scan("administrativeUnit", 0)]
    groups = [r["id"] for _, r in d.scan("group", 0) if r.get("isAssignableToRole")]
    if not members:
        return
    # Custom roles are held by users (a few scoped to an AU) and role-assignable groups.
    for _ in range(max(3, users // 200)):
        role = rng.choice(customs)["id"]
        principal = rng.choice(groups) if groups and rng.random() < 0.15 else rng.choice(members)
        scope = f"/administrativeUnits/{rng.choice(units)}" if units and rng.random() < 0.3 else "/"
        aid = assignment_id(role, principal, scope)
        store.custom_assignments[aid] = {
            "id": aid,
            "directoryScopeId": scope,
            "principalId": principal,
            "roleDefinitionId": role,
        }
    # PIM: admins are eligible for privileged roles and activate them when needed.
    eligible_roles = [t for n, t in TEMPLATES.items() if n != "Directory Readers"]
    for _ in range(max(3, users // 100)):
        add_eligibility(rng, store, rng.choice(eligible_roles), rng.choice(members))


def add_eligibility(
    rng: random.Random, store: TenantStore, role: str, principal: str, when: float | None = None
) -> dict[str, Any]:
    start = when if when is not None else EPOCH + rng.randrange(1200 * 86400)
    permanent = rng.random() < 0.6
    row: dict[str, Any] = {
        "id": new_id(rng),
        "appScopeId": None,
        "createdDateTime": iso(start),
        "createdUsing": None,
        "directoryScopeId": "/",
        "memberType": "Direct",
        "modifiedDateTime": None,
        "principalId": principal,
        "roleDefinitionId": role,
        "scheduleInfo": {
            "startDateTime": iso(start),
            "recurrence": None,
            "expiration": {"type": "noExpiration", "endDateTime": None, "duration": None}
            if permanent
            else {
                "type": "afterDateTime",
                "endDateTime": iso(EPOCH + (2300 + rng.randrange(700)) * 86400),  # 2027-2029
                "duration": None,
            },
        },
        "status": "Provisioned",
    }
    row["createdUsing"] = row["id"]  # the schedule request that created it has the same id
    store.eligibility[row["id"]] = row
    return row
