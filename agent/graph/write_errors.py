"""Graph's answers to a refused write, turned into errors an operator can act on.

Graph says what is wrong in prose ("Property 'mail' is read-only and cannot be set."); this
module reads the documented messages and names the property, the missing object or the
permission in the error, with a fix. A 403 body never names the permission, so it comes from
the endpoint table below (facts file §4).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from agent.errors import AgentError, GraphError, PermissionMissing, WriteRejected

_GA = "Global Administrator"
# (path pattern relative to the version root, what the app needs) — first match wins.
WRITE_NEEDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.I), need)
    for pattern, need in (
        (
            r"^/directory/deletedItems/[^/]+/restore$",
            (
                "the write permission of the object's kind (User.ReadWrite.All, "
                "Group.ReadWrite.All, Application.ReadWrite.All or AdministrativeUnit.ReadWrite.All)"
                f" and, for users and groups, the {_GA} directory role"
            ),
        ),
        (r"^/directory/deletedItems/", "the write permission of the object's kind"),
        (r"/appRoleAssign(edTo|ments)(/|$)", "AppRoleAssignment.ReadWrite.All"),
        (
            r"^/(users|groups)/[^/]+/assignLicense$",
            "LicenseAssignment.ReadWrite.All (or User.ReadWrite.All / Group.ReadWrite.All)",
        ),
        (
            r"^/groups/[^/]+/(members|owners)(/|$)",
            (
                "GroupMember.ReadWrite.All (and RoleManagement.ReadWrite.Directory for a "
                "role-assignable group)"
            ),
        ),
        (
            r"^/groups(/|$)",
            (
                "Group.ReadWrite.All (and RoleManagement.ReadWrite.Directory for a role-assignable "
                "group)"
            ),
        ),
        (r"^/users(/|$)", "User.ReadWrite.All"),
        (  # before the servicePrincipals rule: a policy link needs both
            r"^/servicePrincipals/[^/]+/\w+Policies/",
            (
                "Policy.Read.All (or Policy.ReadWrite.ApplicationConfiguration) and "
                "Application.ReadWrite.All"
            ),
        ),
        (r"^/(applications|servicePrincipals)(/|$)", "Application.ReadWrite.All"),
        (r"^/oauth2PermissionGrants(/|$)", "DelegatedPermissionGrant.ReadWrite.All"),
        (r"^(/directory)?/administrativeUnits(/|$)", "AdministrativeUnit.ReadWrite.All"),
        (r"^/devices(/|$)", "Device.ReadWrite.All"),
        (
            r"^/identity/conditionalAccess/policies(/|$)",
            "Policy.ReadWrite.ConditionalAccess and Policy.Read.All",
        ),
        (r"^/identity/conditionalAccess/", "Policy.ReadWrite.ConditionalAccess"),
        (
            r"^/policies/authenticationStrengthPolicies(/|$)",
            "Policy.ReadWrite.ConditionalAccess or Policy.ReadWrite.AuthenticationMethod",
        ),
        (r"^/policies/authenticationMethodsPolicy(/|$)", "Policy.ReadWrite.AuthenticationMethod"),
        (r"^/policies/authorizationPolicy(/|$)", "Policy.ReadWrite.Authorization"),
        (
            r"^/policies/identitySecurityDefaultsEnforcementPolicy(/|$)",
            "Policy.ReadWrite.SecurityDefaults",
        ),
        (r"^/policies/crossTenantAccessPolicy(/|$)", "Policy.ReadWrite.CrossTenantAccess"),
        (r"^/policies/adminConsentRequestPolicy(/|$)", "Policy.ReadWrite.ConsentRequest"),
        (r"^/policies/permissionGrantPolicies(/|$)", "Policy.ReadWrite.PermissionGrant"),
        (
            (
                r"^/policies/(tokenLifetime|homeRealmDiscovery|activityBasedTimeout|claimsMapping|"
                r"tokenIssuance)Policies(/|$)"
            ),
            "Policy.ReadWrite.ApplicationConfiguration",
        ),
        (r"^/groupLifecyclePolicies(/|$)", "Directory.ReadWrite.All"),
        (
            r"^/roleManagement/directory/roleEligibilitySchedule",
            "RoleEligibilitySchedule.ReadWrite.Directory or RoleManagement.ReadWrite.Directory",
        ),
        (r"^/roleManagement/directory/", "RoleManagement.ReadWrite.Directory"),
        (r"^/(groupSettings|groups/[^/]+/settings)(/|$)", "Directory.ReadWrite.All"),
        (r"^/organization/[^/]+/branding(/|$)", "OrganizationalBranding.ReadWrite.All"),
        (r"^/organization(/|$)", "Organization.ReadWrite.All"),
        (r"^/domains(/|$)", "Domain.ReadWrite.All"),
    )
)

# (reason, message pattern naming the target, fix); {target} is filled in.
_RULES: tuple[tuple[str, re.Pattern[str], str, str], ...] = tuple(
    (reason, re.compile(pattern, re.I), what, fix)
    for reason, pattern, what, fix in (
        (
            "read_only",
            r"Property '([^']+)' is read-only",
            "property '{target}' is read-only",
            "Leave '{target}' out of the write: Graph computes it or sets it through its own API.",
        ),
        (
            "unknown_property",
            r"Invalid property '([^']+)'",
            "'{target}' is not a property of this object",
            "Leave '{target}' out of the write; it may come from a newer schema or the beta API.",
        ),
        (
            "invalid_value",
            r"Invalid value specified for property '([^']+)'",
            "the value of '{target}' is not valid",
            "Check the value of '{target}' against the object's schema.",
        ),
        (
            "required",
            r"Property (\S+) value is required",
            "property '{target}' is required when creating this object",
            "Include '{target}' in the create request.",
        ),
        (
            "required",
            r"A (password) must be specified",
            "a password is required to create a user",
            "Send passwordProfile with a new temporary password.",
        ),
        (
            "password",
            r"(password) complexity",
            "the password does not meet the tenant's complexity rules",
            "Use a longer password with upper and lower case letters, digits and symbols.",
        ),
        (
            "conflict",
            r"same value for property (\w+)",
            "another object already has this {target}",
            "Rename or remove the other object first, or restore into the existing one.",
        ),
        (
            "conflict",
            r"service principal name (\S+) is already in use",
            "a service principal for appId {target} already exists",
            "Use the existing service principal instead of creating another.",
        ),
        (
            "conflict",
            r"(Permission entry) already exists",
            "the same delegated permission grant already exists",
            "Update the existing grant's scope instead of creating another.",
        ),
        (
            "exists",
            (
                r"added object references already exist for the following modified properties: "
                r"'(\w+)'"
            ),
            "the object is already in {target}",
            "Nothing to do: the link is already there.",
        ),
        (
            "exists",
            r"(Permission being assigned) already exists",
            "the app role is already assigned",
            "Nothing to do: the assignment is already there.",
        ),
        (
            "missing",
            r"Resource '([^']*)' does not exist",
            "object '{target}' does not exist",
            (
                "It may have been deleted since the snapshot: restore or recreate it first, then "
                "retry."
            ),
        ),
        (
            "missing",
            r"\w+ with id (\S+) does not exist in the directory",
            "the policy refers to object '{target}', which does not exist",
            "Restore or recreate '{target}' first (or drop it from the policy), then retry.",
        ),
        (
            "schema",
            r"Incoming (\w+) object is null or does not match the schema",
            "the body is not a valid {target}",
            "Send the object's full type in @odata.type and only the properties its schema has.",
        ),
        (
            "in_use",
            r"\w+ with id (\S+) is referenced by",
            "'{target}' is still used by a conditional access policy",
            "Remove '{target}' from the conditional access policies that use it, then retry.",
        ),
        (
            "built_in",
            r"(Built-in) [\w ]+ cannot be",
            "built-in objects cannot be changed or deleted",
            "Leave built-in objects as they are; change a custom copy instead.",
        ),
        (
            "exists",
            r"(A conflicting object) with one or more|The (Role assignment) already exists",
            "the role assignment or eligibility already exists",
            "Nothing to do: it is already there.",
        ),
        (
            "missing",
            r"The (Role assignment) does not exist",
            "the role eligibility does not exist",
            "Nothing to remove: it is already gone.",
        ),
        (
            "not_licensed",
            r"needs to have (Microsoft Entra ID P2)",
            "the tenant has no {target} or ID Governance licence",
            (
                "Buy Microsoft Entra ID P2 (or ID Governance) for the tenant, or restore without "
                "PIM eligibility."
            ),
        ),
        (
            "invalid_value",
            r"Only groups with (isAssignableToRole)|resource action '([^']+)' is not supported",
            "'{target}' does not allow this role write",
            (
                "Assign roles only to role-assignable groups; custom roles hold only "
                "microsoft.directory/ actions."
            ),
        ),
        (
            "expired",
            r"(expiration time) of the schedule is in the past",
            "the schedule ended before this write",
            "Nothing to restore: the eligibility would already have expired.",
        ),
        (
            "in_use",
            r"(role definition) cannot be deleted because it has active assignments",
            "the {target} is still assigned",
            "Remove its assignments first.",
        ),
        (
            "not_subscribed",
            r"License (\S+) does not correspond to a valid company License",
            "the tenant has no subscription for licence {target}",
            "Buy the licence again (restore buys nothing), or restore without it.",
        ),
        (
            "no_units",
            r"Subscription (\S+) does not have any available licenses",
            "every unit of licence {target} is in use",
            "Free or buy units of the licence, then restore again.",
        ),
        (
            "required",
            r"user with invalid (usage location)",
            "a licence needs the user's usage location",
            "Set the user's usageLocation first (restore sets it before licences).",
        ),
        (
            "missing",
            r"(User|Group) does not have a corresponding license",
            "the {target} does not hold that licence itself",
            "Nothing to remove: a licence inherited from a group is removed on the group.",
        ),
        (
            "synced",
            r"(on-premises mastered)",
            "the object is synchronised from on-premises Active Directory",
            "Change it in on-premises AD (Entra Connect syncs it back).",
        ),
        (
            "not_supported",
            r"(mail-enabled security groups and or distribution list)",
            "mail-enabled security groups and distribution lists cannot be changed through Graph",
            "Change them through Exchange Online (the Exchange bridge).",
        ),
    )
)


def graph_path(url: str) -> str:
    """The path under the version root: /v1.0/users/x → /users/x."""
    path = urlsplit(url).path or url
    return re.sub(r"^/(v1\.0|beta)(?=/)", "", path)


def write_error(method: str, url: str, status: int, body: Any, request_id: str = "") -> AgentError:
    """The AgentError for a refused write (``body`` is Graph's JSON error body, if any)."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code, message = str(error.get("code") or ""), str(error.get("message") or "")
    inner = error.get("innerError") or error.get("innererror") or {}
    if isinstance(inner, dict):
        request_id = str(inner.get("request-id") or request_id)
    path = graph_path(url)
    what = f"{method.upper()} {path}"
    if status == 403:
        need = next((n for p, n in WRITE_NEEDS if p.search(path)), "a write permission")
        return PermissionMissing(
            f"Graph denied {what}: the app needs {need} (403 {code}).",
            "Grant the application permission and give admin consent (Entra admin center > "
            "App registrations > API permissions); assign directory roles under Roles and "
            "administrators.",
        )
    for reason, pattern, text, fix in _RULES:
        match = pattern.search(message)
        if match:
            target = next((g for g in match.groups() if g), "")  # alternations: the one hit
            return WriteRejected(
                f"Graph refused {what}: {text.format(target=target)} ({status} {code}).",
                fix.format(target=target),
                reason=reason,
                target=target,
                status=status,
                graph_code=code,
                request_id=request_id,
            )
    detail = f" {code}: {message.rstrip('.')}" if code or message else ""
    return GraphError(
        f"Graph refused {what} with {status}{detail}.",
        "Retry later; if it persists, report it with the request id.",
        status=status,
        graph_code=code,
        request_id=request_id,
    )
