"""Relationship changes as Entra audits them: every write to the ObjectStore's links, children
and app role assignments made after the tenant exists (churn, Graph writes) goes through here,
so the directory audit log names the parent object the way the Core Directory service does
(Microsoft Entra audit log activity reference): "Add owner to application", "Remove registered
users from device", "Add member to administrative unit", "Add policy to service principal",
"Add app role assignment grant to user", and "Update application" for an app's extension
properties and federated credentials. The parent is the first target, the related object the
second. Generation writes the store directly: a generated tenant has no history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.simulator.graph.directory import Directory

# relation -> (activity when a link is added, when it is removed)
LINK_ACTIVITIES = {
    "application.owners": ("Add owner to application", "Remove owner from application"),
    "servicePrincipal.owners": (
        "Add owner to service principal",
        "Remove owner from service principal",
    ),
    "administrativeUnit.members": (
        "Add member to administrative unit",
        "Remove member from administrative unit",
    ),
    "device.registeredOwners": (
        "Add registered owner to device",
        "Remove registered owner from device",
    ),
    "device.registeredUsers": (
        "Add registered users to device",
        "Remove registered users from device",
    ),
    "directoryRole.members": ("Add member to role", "Remove member from role"),
    **{
        f"servicePrincipal.{rel}": (
            "Add policy to service principal",
            "Remove policy from service principal",
        )
        for rel in (
            "claimsMappingPolicies",
            "tokenIssuancePolicies",
            "tokenLifetimePolicies",
            "homeRealmDiscoveryPolicies",
        )
    },
}
# The application property an extension property or federated credential change shows as.
CHILD_PROPERTY = {
    "application.extensionProperties": "ExtensionProperties",
    "application.federatedIdentityCredentials": "FederatedIdentityCredentials",
}
# principalType -> (add, remove, category) of app role assignments.
ASSIGNMENT_ACTIVITIES = {
    "User": (
        "Add app role assignment grant to user",
        "Remove app role assignment from user",
        "UserManagement",
    ),
    "Group": (
        "Add app role assignment to group",
        "Remove app role assignment from group",
        "GroupManagement",
    ),
    "ServicePrincipal": (
        "Add app role assignment to service principal",
        "Remove app role assignment from service principal",
        "ApplicationManagement",
    ),
}


def _kind(d: Directory, oid: str) -> str:
    return d.kind_of(oid) or (d.deleted[oid].kind if oid in d.deleted else "policy")


def link(d: Directory, relation: str, source: str, target: str) -> None:
    """Add a link (the caller holds the lock) and audit it."""
    d.objects.link(relation, source, target)
    kind = relation.split(".", 1)[0]
    d.activity.record_link(
        d, kind, source, LINK_ACTIVITIES[relation][0], [(target, _kind(d, target))]
    )


def unlink(d: Directory, relation: str, source: str, target: str) -> None:
    d.objects.unlink(relation, source, target)
    kind = relation.split(".", 1)[0]
    d.activity.record_link(
        d, kind, source, LINK_ACTIVITIES[relation][1], [(target, _kind(d, target))]
    )


def add_child(d: Directory, relation: str, parent: str, row: dict[str, Any]) -> None:
    """An extension property or federated credential of an app: an application update."""
    d.objects.add_child(relation, parent, row)
    d.activity.record_link(
        d, "application", parent, "Update application", [], properties=(CHILD_PROPERTY[relation],)
    )


def remove_child(d: Directory, relation: str, parent: str, child_id: str) -> None:
    rows = d.objects.children[relation].get(parent, [])
    rows[:] = [r for r in rows if r.get("id") != child_id]
    d.activity.record_link(
        d, "application", parent, "Update application", [], properties=(CHILD_PROPERTY[relation],)
    )


def child_changed(d: Directory, relation: str, parent: str) -> None:
    """A federated credential edited in place: an application update too."""
    d.activity.record_link(
        d, "application", parent, "Update application", [], properties=(CHILD_PROPERTY[relation],)
    )


def scoped_member(d: Directory, unit: str, role: str, principal: str, *, added: bool) -> None:
    """A role assignment scoped to an administrative unit (its scopedRoleMembers)."""
    activity = "Add scoped member to role" if added else "Remove scoped member from role"
    d.activity.record_link(
        d,
        "administrativeUnit",
        unit,
        activity,
        [(principal, _kind(d, principal)), (role, "directoryRole")],
        category="RoleManagement",
    )


def add_assignment(d: Directory, row: dict[str, Any]) -> None:
    d.objects.add_assignment(row)
    _audit_assignment(d, row, 0)


def remove_assignment(d: Directory, assignment_id: str) -> None:
    row = d.objects.assignments[assignment_id]
    d.objects.remove_assignment(assignment_id)
    _audit_assignment(d, row, 1)


def _audit_assignment(d: Directory, row: dict[str, Any], which: int) -> None:
    activities = ASSIGNMENT_ACTIVITIES[row["principalType"]]
    principal = {"User": "user", "Group": "group"}.get(row["principalType"], "servicePrincipal")
    d.activity.record_link(
        d,
        "servicePrincipal",
        row["resourceId"],
        activities[which],
        [(row["principalId"], principal)],
        category=activities[2],
    )


def policy_deleted(d: Directory, kind: str, key: str, name: Any) -> None:
    """Policies are not directory rows; their deletion is still a Core Directory event."""
    d.activity.record_link(d, "policy", key, "Delete policy", [], category="Policy", name=name)
