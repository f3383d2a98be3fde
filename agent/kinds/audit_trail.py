"""Directory audit activities that say a relationship changed, as the Core Directory service
names them (Microsoft Entra audit log activity reference: categories ApplicationManagement,
Device, AdministrativeUnit, RoleManagement, GroupManagement, UserManagement, Policy).

Relationship kinds without a Graph delta declare which of these mark their parent as changed
(``KindSpec.changed_by``) and which kinds their related objects can be (``links_to``): an
incremental run re-reads only those parents (agent/collect/audit_relation.py). Deleting a
user, group, service principal, device or policy takes it out of every relationship that
showed it without an event on those parents; restoring one brings links back that no event
names — the tables below say which activities do that to which kind.
"""

from __future__ import annotations

GROUP_OWNERS = ("Add owner to group", "Remove owner from group")
APP_OWNERS = ("Add owner to application", "Remove owner from application")
SP_OWNERS = ("Add owner to service principal", "Remove owner from service principal")
APP_ROLE_ASSIGNMENTS = (
    "Add app role assignment to service principal",
    "Remove app role assignment from service principal",
    "Add app role assignment grant to user",
    "Remove app role assignment from user",
    "Add app role assignment to group",
    "Remove app role assignment from group",
)
AU_MEMBERS = (
    "Add member to administrative unit",
    "Remove member from administrative unit",
    "Add member to restricted management administrative unit",
    "Remove member from restricted management administrative unit",
)
AU_SCOPED_ROLE_MEMBERS = ("Add scoped member to role", "Remove scoped member from role")
ROLE_MEMBERS = (
    "Add member to role",
    "Remove member from role",
    # PIM activations and their expiry add and remove role members (service PIM).
    "Add member to role completed (PIM activation)",
    "Remove member from role (PIM activation expired)",
)
DEVICE_OWNERS = ("Add registered owner to device", "Remove registered owner from device")
DEVICE_USERS = ("Add registered users to device", "Remove registered users from device")
# Extension properties and federated credentials are properties of the application object:
# adding or removing one is logged as an update of the application.
APP_UPDATE = ("Update application",)
SP_POLICIES = ("Add policy to service principal", "Remove policy from service principal")

# Object kind -> activities that take such an object out of every relationship showing it.
TARGET_GONE: dict[str, tuple[str, ...]] = {
    "user": ("Delete user", "Hard Delete user"),
    "group": ("Delete group", "Hard Delete group"),
    "servicePrincipal": ("Remove service principal", "Hard delete service principal"),
    "device": ("Delete device",),
    "policy": ("Delete policy",),
}
# Object kind -> activities that bring it back (with links no event names).
TARGET_BACK: dict[str, tuple[str, ...]] = {
    "user": ("Restore user",),
    "group": ("Restore group",),
    "servicePrincipal": ("Restore service principal",),
}


def activity_key(name: str) -> str:
    """Activities compare without case: Entra writes "Hard Delete user" and "Hard delete
    service principal"."""
    return name.strip().lower()
