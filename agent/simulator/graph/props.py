"""User and group properties from Microsoft Graph v1.0 CSDL (EntityType user, group).

Generated once from graph-v1.0.csdl: $select is checked against these names, and a selected
property that is unset is answered as null (or [] for a collection), as Graph does.
"""

from __future__ import annotations

from agent.simulator.graph import props_objects, props_tenant

USER_SCALARS = frozenset(
    {
        "id",
        "deletedDateTime",
        "aboutMe",
        "accountEnabled",
        "ageGroup",
        "authorizationInfo",
        "birthday",
        "city",
        "companyName",
        "consentProvidedForMinor",
        "country",
        "createdDateTime",
        "creationType",
        "customSecurityAttributes",
        "department",
        "deviceEnrollmentLimit",
        "displayName",
        "employeeHireDate",
        "employeeId",
        "employeeLeaveDateTime",
        "employeeOrgData",
        "employeeType",
        "externalUserState",
        "externalUserStateChangeDateTime",
        "faxNumber",
        "givenName",
        "hireDate",
        "identityParentId",
        "isManagementRestricted",
        "isResourceAccount",
        "jobTitle",
        "lastPasswordChangeDateTime",
        "legalAgeGroupClassification",
        "mail",
        "mailboxSettings",
        "mailNickname",
        "mobilePhone",
        "mySite",
        "officeLocation",
        "onPremisesDistinguishedName",
        "onPremisesDomainName",
        "onPremisesExtensionAttributes",
        "onPremisesImmutableId",
        "onPremisesLastSyncDateTime",
        "onPremisesSamAccountName",
        "onPremisesSecurityIdentifier",
        "onPremisesSyncEnabled",
        "onPremisesUserPrincipalName",
        "passwordPolicies",
        "passwordProfile",
        "postalCode",
        "preferredDataLocation",
        "preferredLanguage",
        "preferredName",
        "print",
        "securityIdentifier",
        "showInAddressList",
        "signInActivity",
        "signInSessionsValidFromDateTime",
        "state",
        "streetAddress",
        "surname",
        "usageLocation",
        "userPrincipalName",
        "userType",
    }
)

USER_COLLECTIONS = frozenset(
    {
        "assignedLicenses",
        "assignedPlans",
        "businessPhones",
        "identities",
        "imAddresses",
        "interests",
        "licenseAssignmentStates",
        "onPremisesProvisioningErrors",
        "otherMails",
        "pastProjects",
        "provisionedPlans",
        "proxyAddresses",
        "responsibilities",
        "schools",
        "serviceProvisioningErrors",
        "skills",
    }
)

USER_NAVIGATION = frozenset(
    {
        "activities",
        "adhocCalls",
        "agreementAcceptances",
        "appRoleAssignments",
        "authentication",
        "calendar",
        "calendarGroups",
        "calendars",
        "calendarView",
        "chats",
        "cloudClipboard",
        "cloudPCs",
        "contactFolders",
        "contacts",
        "createdObjects",
        "dataSecurityAndGovernance",
        "deviceManagementTroubleshootingEvents",
        "directReports",
        "drive",
        "drives",
        "employeeExperience",
        "events",
        "extensions",
        "followedSites",
        "inferenceClassification",
        "insights",
        "joinedTeams",
        "licenseDetails",
        "mailFolders",
        "managedAppRegistrations",
        "managedDevices",
        "manager",
        "memberOf",
        "messages",
        "oauth2PermissionGrants",
        "onenote",
        "onlineMeetings",
        "onPremisesSyncBehavior",
        "outlook",
        "ownedDevices",
        "ownedObjects",
        "people",
        "permissionGrants",
        "photo",
        "photos",
        "planner",
        "presence",
        "registeredDevices",
        "scopedRoleMemberOf",
        "settings",
        "solutions",
        "sponsorOf",
        "sponsors",
        "teamwork",
        "todo",
        "transitiveMemberOf",
    }
)

GROUP_SCALARS = frozenset(
    {
        "id",
        "deletedDateTime",
        "accessType",
        "allowExternalSenders",
        "autoSubscribeNewMembers",
        "classification",
        "createdDateTime",
        "description",
        "displayName",
        "expirationDateTime",
        "hasMembersWithLicenseErrors",
        "hideFromAddressLists",
        "hideFromOutlookClients",
        "isArchived",
        "isAssignableToRole",
        "isFavorite",
        "isManagementRestricted",
        "isSubscribedByMail",
        "licenseProcessingState",
        "mail",
        "mailEnabled",
        "mailNickname",
        "membershipRule",
        "membershipRuleProcessingState",
        "onPremisesDomainName",
        "onPremisesExtensionAttributes",
        "onPremisesLastSyncDateTime",
        "onPremisesNetBiosName",
        "onPremisesSamAccountName",
        "onPremisesSecurityIdentifier",
        "onPremisesSyncEnabled",
        "organizationId",
        "preferredDataLocation",
        "preferredLanguage",
        "renewedDateTime",
        "securityEnabled",
        "securityIdentifier",
        "theme",
        "uniqueName",
        "unseenConversationsCount",
        "unseenCount",
        "unseenMessagesCount",
        "visibility",
        "welcomeMessageEnabled",
    }
)

GROUP_COLLECTIONS = frozenset(
    {
        "assignedLabels",
        "assignedLicenses",
        "groupTypes",
        "infoCatalogs",
        "onPremisesProvisioningErrors",
        "proxyAddresses",
        "resourceBehaviorOptions",
        "resourceProvisioningOptions",
        "serviceProvisioningErrors",
    }
)

GROUP_NAVIGATION = frozenset(
    {
        "acceptedSenders",
        "appRoleAssignments",
        "calendar",
        "calendarView",
        "conversations",
        "createdOnBehalfOf",
        "drive",
        "drives",
        "events",
        "extensions",
        "groupLifecyclePolicies",
        "memberOf",
        "members",
        "membersWithLicenseErrors",
        "onenote",
        "onPremisesSyncBehavior",
        "owners",
        "permissionGrants",
        "photo",
        "photos",
        "planner",
        "rejectedSenders",
        "settings",
        "sites",
        "team",
        "threads",
        "transitiveMemberOf",
        "transitiveMembers",
    }
)

# What Graph returns for a user when no $select is given (documented default set).
USER_DEFAULT_SELECT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)

# Groups answer with most of their properties by default (v1.0 list-groups example).
GROUP_DEFAULT_SELECT = (
    "id",
    "deletedDateTime",
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
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "securityEnabled",
    "securityIdentifier",
    "theme",
    "visibility",
    "onPremisesProvisioningErrors",
    "serviceProvisioningErrors",
)

SCALARS = {"user": USER_SCALARS, "group": GROUP_SCALARS}
COLLECTIONS = {"user": USER_COLLECTIONS, "group": GROUP_COLLECTIONS}
NAVIGATION = {"user": USER_NAVIGATION, "group": GROUP_NAVIGATION}
DEFAULT_SELECT = {"user": USER_DEFAULT_SELECT, "group": GROUP_DEFAULT_SELECT}
ODATA_TYPE = {"user": "#microsoft.graph.user", "group": "#microsoft.graph.group"}
# Applications, service principals, devices, … (props_objects.py, from the CSDL).
SCALARS.update(props_objects.SCALARS)
COLLECTIONS.update(props_objects.COLLECTIONS)
NAVIGATION.update(props_objects.NAVIGATION)
DEFAULT_SELECT.update(props_objects.DEFAULT_SELECT)
ODATA_TYPE.update(props_objects.ODATA_TYPE)
# Roles, group settings, organization, branding, domains (props_tenant.py).
SCALARS.update(props_tenant.SCALARS)
COLLECTIONS.update(props_tenant.COLLECTIONS)
NAVIGATION.update(props_tenant.NAVIGATION)
DEFAULT_SELECT.update(props_tenant.DEFAULT_SELECT)
ODATA_TYPE.update(props_tenant.ODATA_TYPE)


def is_property(kind: str, name: str) -> bool:
    return name in SCALARS[kind] or name in COLLECTIONS[kind]
