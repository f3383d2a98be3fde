"""Microsoft Entra ID kinds read through Microsoft Graph."""

from __future__ import annotations

from agent.kinds import audit_trail as trail
from agent.kinds.spec import DIRECTORY_READ, Area, Incremental, KindSpec

# Properties an administrator expects back after a restore; read-only ones (createdDateTime,
# onPremises*) are kept so a diff can explain what restore cannot change.
USER_SELECT = (
    "id",
    "accountEnabled",
    "ageGroup",
    # Direct and group-based licences; the states say which is which (assignedByGroup), so
    # restore gives back only the direct ones (the groups give back the others).
    "assignedLicenses",
    "businessPhones",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "country",
    "createdDateTime",
    "creationType",
    "department",
    "displayName",
    "employeeHireDate",
    "employeeId",
    "employeeOrgData",
    "employeeType",
    "externalUserState",
    "faxNumber",
    "givenName",
    "identities",
    "imAddresses",
    "jobTitle",
    "licenseAssignmentStates",
    "mail",
    "mailNickname",
    "mobilePhone",
    "officeLocation",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesExtensionAttributes",
    "onPremisesImmutableId",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "otherMails",
    "passwordPolicies",
    "postalCode",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "showInAddressList",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
)

GROUP_SELECT = (
    "id",
    "assignedLicenses",  # group-based licensing
    "classification",
    "createdDateTime",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "securityEnabled",
    "securityIdentifier",
    "theme",
    "visibility",
)

USER_READ = ("User.Read.All", "User.ReadWrite.All", *DIRECTORY_READ)
GROUP_READ = ("Group.Read.All", "Group.ReadWrite.All", *DIRECTORY_READ)

USER = KindSpec(
    name="user",
    title="Users",
    area=Area.ENTRA,
    collector="graph.users",  # one users delta round also yields userManager
    describes="Member and guest users with their profile, contact, organisation and "
    "on-premises sync properties.",
    source="GET /users/delta",
    incremental=Incremental.DELTA,
    read_permissions=USER_READ,
    write_permissions=("User.ReadWrite.All",),
    entity_type="user",
    path="/users",
    delta_path="/users/delta",
    label="userPrincipalName",
    select=USER_SELECT,
    unordered=(
        "businessPhones",
        "imAddresses",
        "otherMails",
        "proxyAddresses",
        "identities",
        "assignedLicenses[skuId]",
    ),
    # When Entra last re-evaluated a licence: moves without any configuration change.
    volatile=("licenseAssignmentStates.lastUpdatedDateTime",),
    restore=("patch", "undelete", "recreate"),
    # The product documentation this project follows (facts file §3).
    undelete_roles=("Global Administrator",),
)

GROUP = KindSpec(
    name="group",
    title="Groups",
    area=Area.ENTRA,
    collector="graph.groups",
    describes="Groups of every type: Microsoft 365, security, mail-enabled security, "
    "distribution and dynamic-membership groups, with their settings and group-based "
    "licence assignments (assignedLicenses).",
    source="GET /groups/delta",
    incremental=Incremental.DELTA,
    read_permissions=GROUP_READ,
    write_permissions=("Group.ReadWrite.All",),
    entity_type="group",
    path="/groups",
    delta_path="/groups/delta",
    select=GROUP_SELECT,
    unordered=("groupTypes", "proxyAddresses", "assignedLicenses[skuId]"),
    restore=("patch", "undelete", "recreate"),
    # The product documentation this project follows (facts file §3).
    undelete_roles=("Global Administrator",),
    after=("user",),
)

GROUP_MEMBER = KindSpec(
    name="groupMember",
    title="Group members",
    area=Area.ENTRA,
    collector="graph.groups",
    describes="The direct members of each group (users, groups, devices, service "
    "principals, contacts), one object per group.",
    source="GET /groups/delta ($select=members → members@delta)",
    incremental=Incremental.DELTA,
    read_permissions=(
        "GroupMember.Read.All",
        "Group.Read.All",
        "GroupMember.ReadWrite.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    write_permissions=("GroupMember.ReadWrite.All",),
    key="groupId",
    label="groupId",
    parent="group",
    unordered=("members",),
    restore=("relink",),
    # A DL recreated through the bridge is in the id map before a group's members name it.
    after=("group", "user", "distributionGroup", "mailEnabledSecurityGroup"),
    notes="Dynamic-membership groups are backed up too; restore re-applies the rule, not "
    "the members.",
)

GROUP_OWNER = KindSpec(
    name="groupOwner",
    title="Group owners",
    area=Area.ENTRA,
    collector="graph.relation",
    describes="The owners of each group (users and service principals), one object per group.",
    source="GET /groups?$expand=owners($select=id); incremental: groups the directory audit "
    "log names",
    incremental=Incremental.AUDIT,
    read_permissions=GROUP_READ,
    write_permissions=("Group.ReadWrite.All",),
    key="groupId",
    label="groupId",
    parent="group",
    path="/groups",
    relation="owners",
    unordered=("owners",),
    restore=("relink",),
    after=("group", "user"),
    changed_by=trail.GROUP_OWNERS,
    links_to=("user", "servicePrincipal"),
    notes="Graph's groups delta does not track owners: a full run reads them for every group "
    "(one request per 100 groups); an incremental one only for groups the directory audit "
    "log names ('Add owner to group', …) and new groups.",
)

KINDS: tuple[KindSpec, ...] = (USER, GROUP, GROUP_MEMBER, GROUP_OWNER)
