"""Entra policy kinds without delta (roles, settings, organization, domains and branding are
in entra_tenant.py).

They are small, so each is read in full every run (``graph.list``); an unchanged object has
the same blob and costs no new version. Paths and permissions: facts file §4 and Graph's
permission reference (least-privileged first).
"""

from __future__ import annotations

from agent.kinds.spec import DIRECTORY_READ, Area, Incremental, KindSpec


def config_kind(
    name: str,
    title: str,
    path: str,
    describes: str,
    *,
    read: tuple[str, ...],
    write: tuple[str, ...] = (),
    write_also: tuple[str, ...] = (),
    singleton: bool = False,
    entity_type: str | None = None,
    key: str = "id",
    label: str = "displayName",
    volatile: tuple[str, ...] = (),
    restore: tuple[str, ...] = ("patch", "recreate"),
    after: tuple[str, ...] = (),
    contained: tuple[str, ...] = (),
    unordered: tuple[str, ...] = (),
    references: tuple[tuple[str, str], ...] = (),
    notes: str = "",
) -> KindSpec:
    """A kind read in full from one Graph collection or singleton."""
    return KindSpec(
        name=name,
        title=title,
        area=Area.ENTRA,
        collector="graph.list",
        describes=describes,
        source=f"GET {path}",
        incremental=Incremental.FULL,
        read_permissions=read,
        write_permissions=write,
        write_also=write_also,
        entity_type=entity_type,
        key=key,
        label=label,
        volatile=volatile,
        restore=("patch",) if singleton else restore,
        after=after,
        path=path,
        singleton=singleton,
        contained=contained,
        unordered=unordered,
        references=references,
        notes=notes,
    )


# Conditional access and named locations: Graph allows 1 request/s per tenant for all apps
# together (facts file §1); the Graph client paces these paths (agent/graph/pacing.py).
CA_READ = ("Policy.Read.All", "Policy.Read.ConditionalAccess", "Policy.ReadWrite.ConditionalAccess")
APP_CONFIG_READ = (
    "Policy.Read.All",
    "Policy.Read.ApplicationConfiguration",
    "Policy.ReadWrite.ApplicationConfiguration",
)

# Who, what and where a conditional access policy covers: sets of ids and values.
CA_POLICY_SETS = (
    "conditions.users.includeUsers",
    "conditions.users.excludeUsers",
    "conditions.users.includeGroups",
    "conditions.users.excludeGroups",
    "conditions.users.includeRoles",
    "conditions.users.excludeRoles",
    "conditions.applications.includeApplications",
    "conditions.applications.excludeApplications",
    "conditions.applications.includeUserActions",
    "conditions.locations.includeLocations",
    "conditions.locations.excludeLocations",
    "conditions.platforms.includePlatforms",
    "conditions.platforms.excludePlatforms",
    "conditions.clientAppTypes",
    "conditions.signInRiskLevels",
    "conditions.userRiskLevels",
    "grantControls.builtInControls",
    "grantControls.termsOfUse",
)

# The objects a conditional access policy names: by id, applications by appId (a recreated app
# has a new one, which the id map follows; values that are no app of the tenant's — All, None,
# Office365, MicrosoftAdminPortals, Microsoft's first-party apps — are left as they are), and
# workload identities by their service principal's id.
CA_REFERENCES = (
    *((f"conditions.users.{p}Users", "user") for p in ("include", "exclude")),
    *((f"conditions.users.{p}Groups", "group") for p in ("include", "exclude")),
    *((f"conditions.users.{p}Roles", "roleDefinition") for p in ("include", "exclude")),
    *((f"conditions.locations.{p}Locations", "namedLocation") for p in ("include", "exclude")),
    ("grantControls.authenticationStrength.id", "authenticationStrengthPolicy"),
    *(
        (f"conditions.applications.{p}Applications", "application[appId]")
        for p in ("include", "exclude")
    ),
    *(
        (f"conditions.clientApplications.{p}ServicePrincipals", "servicePrincipal")
        for p in ("include", "exclude")
    ),
)
# Method configurations scoped to groups (all_users is a word, not an id).
METHOD_REFERENCES = (
    ("authenticationMethodConfigurations.includeTargets.id", "group"),
    ("authenticationMethodConfigurations.excludeTargets.id", "group"),
)

POLICY_KINDS: tuple[KindSpec, ...] = (
    config_kind(
        "namedLocation",
        "Named locations",
        "/identity/conditionalAccess/namedLocations",
        "IP-range and country named locations used by conditional access.",
        read=CA_READ,
        write=("Policy.ReadWrite.ConditionalAccess",),
        # Graph's create and update pages (ipNamedLocation, countryNamedLocation): "Policy.Read.
        # All and Policy.ReadWrite.ConditionalAccess", with no alternative to Policy.Read.All.
        write_also=("Policy.Read.All",),
        entity_type="namedLocation",
        volatile=("modifiedDateTime",),
        unordered=("ipRanges", "countriesAndRegions"),
        notes="Graph allows 1 request/s per tenant for conditional access and named "
        "locations; the client paces these reads to that rate.",
    ),
    config_kind(
        "conditionalAccessPolicy",
        "Conditional access policies",
        "/identity/conditionalAccess/policies",
        "Conditional access policies with their conditions, grant and session controls.",
        read=CA_READ,
        write=("Policy.ReadWrite.ConditionalAccess",),
        # Graph's create and update pages: "Policy.Read.All and Policy.ReadWrite.
        # ConditionalAccess" (least privileged), or Application.Read.All in its place.
        write_also=("Policy.Read.All", "Application.Read.All"),
        entity_type="conditionalAccessPolicy",
        volatile=("modifiedDateTime",),
        # A mail-enabled security group the bridge recreates is in the id map first.
        after=(
            "namedLocation",
            "group",
            "user",
            "roleDefinition",
            "authenticationStrengthPolicy",
            "application",
            "servicePrincipal",
            "mailEnabledSecurityGroup",
        ),
        unordered=CA_POLICY_SETS,
        references=CA_REFERENCES,
    ),
    config_kind(
        "authenticationMethodsPolicy",
        "Authentication methods policy",
        "/policies/authenticationMethodsPolicy",
        "The tenant's authentication methods policy with every method configuration.",
        read=(
            "Policy.Read.AuthenticationMethod",
            "Policy.ReadWrite.AuthenticationMethod",
            "Policy.Read.All",
        ),
        write=("Policy.ReadWrite.AuthenticationMethod",),
        singleton=True,
        entity_type="authenticationMethodsPolicy",
        volatile=("lastModifiedDateTime",),
        contained=("authenticationMethodConfigurations",),
        after=("group", "mailEnabledSecurityGroup"),
        references=METHOD_REFERENCES,
        notes="Graph returns every authenticationMethodConfiguration (typed by @odata.type) "
        "inside the policy; a policy answered without them is completed from "
        "…/authenticationMethodConfigurations.",
    ),
    config_kind(
        "authenticationStrengthPolicy",
        "Authentication strength policies",
        "/policies/authenticationStrengthPolicies",
        "Built-in and custom authentication strengths (allowed method combinations).",
        read=(
            "Policy.Read.All",
            "Policy.ReadWrite.ConditionalAccess",
            "Policy.ReadWrite.AuthenticationMethod",
        ),
        write=("Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod"),
        entity_type="authenticationStrengthPolicy",
        volatile=("modifiedDateTime",),
        unordered=("allowedCombinations",),
        contained=("combinationConfigurations",),
    ),
    config_kind(
        "authorizationPolicy",
        "Authorization policy",
        "/policies/authorizationPolicy",
        "Default user permissions (create groups/apps/tenants, guest access and invites).",
        read=("Policy.Read.All", "Policy.ReadWrite.Authorization"),
        write=("Policy.ReadWrite.Authorization",),
        singleton=True,
        entity_type="authorizationPolicy",
    ),
    config_kind(
        "securityDefaults",
        "Security defaults",
        "/policies/identitySecurityDefaultsEnforcementPolicy",
        "Whether security defaults are enabled.",
        read=("Policy.Read.All", "Policy.ReadWrite.SecurityDefaults"),
        write=("Policy.ReadWrite.SecurityDefaults",),
        singleton=True,
        entity_type="identitySecurityDefaultsEnforcementPolicy",
    ),
    config_kind(
        "crossTenantAccessDefault",
        "Cross-tenant access (default)",
        "/policies/crossTenantAccessPolicy/default",
        "Default inbound/outbound B2B collaboration and direct connect settings.",
        read=("Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess"),
        write=("Policy.ReadWrite.CrossTenantAccess",),
        singleton=True,
        entity_type="crossTenantAccessPolicyConfigurationDefault",
        key="id",
    ),
    config_kind(
        "crossTenantAccessPartner",
        "Cross-tenant access (partners)",
        "/policies/crossTenantAccessPolicy/partners",
        "Per-partner-tenant cross-tenant access settings.",
        read=("Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess"),
        write=("Policy.ReadWrite.CrossTenantAccess",),
        entity_type="crossTenantAccessPolicyConfigurationPartner",
        key="tenantId",
        label="tenantId",
    ),
    config_kind(
        "adminConsentRequestPolicy",
        "Admin consent request policy",
        "/policies/adminConsentRequestPolicy",
        "Whether users can request admin consent, and who reviews requests.",
        read=("Policy.Read.All", "Policy.ReadWrite.ConsentRequest", *DIRECTORY_READ),
        write=("Policy.ReadWrite.ConsentRequest",),
        singleton=True,
        entity_type="adminConsentRequestPolicy",
        key="id",
    ),
    *(
        config_kind(
            name,
            title,
            f"/policies/{segment}",
            describes,
            read=APP_CONFIG_READ,
            write=("Policy.ReadWrite.ApplicationConfiguration",),
            entity_type=entity,
        )
        for name, title, segment, entity, describes in (
            (
                "tokenLifetimePolicy",
                "Token lifetime policies",
                "tokenLifetimePolicies",
                "tokenLifetimePolicy",
                "Token lifetime policies and their definitions.",
            ),
            (
                "homeRealmDiscoveryPolicy",
                "Home realm discovery policies",
                "homeRealmDiscoveryPolicies",
                "homeRealmDiscoveryPolicy",
                "Home realm discovery policies.",
            ),
            (
                "activityBasedTimeoutPolicy",
                "Activity-based timeout policies",
                "activityBasedTimeoutPolicies",
                "activityBasedTimeoutPolicy",
                "Idle session timeout policies for web apps.",
            ),
            (
                "claimsMappingPolicy",
                "Claims mapping policies",
                "claimsMappingPolicies",
                "claimsMappingPolicy",
                "Claims mapping policies (SSO claims of enterprise apps).",
            ),
            (
                "tokenIssuancePolicy",
                "Token issuance policies",
                "tokenIssuancePolicies",
                "tokenIssuancePolicy",
                "Token issuance policies (SAML token characteristics).",
            ),
        )
    ),
    config_kind(
        "permissionGrantPolicy",
        "Permission grant policies",
        "/policies/permissionGrantPolicies",
        "Which permissions users may consent to, with includes and excludes.",
        read=("Policy.Read.PermissionGrant", "Policy.ReadWrite.PermissionGrant"),
        write=("Policy.ReadWrite.PermissionGrant",),
        entity_type="permissionGrantPolicy",
        contained=("includes", "excludes"),
    ),
    config_kind(
        "groupLifecyclePolicy",
        "Group expiration policy",
        "/groupLifecyclePolicies",
        "Microsoft 365 group expiration (lifetime, notification address, scope).",
        read=DIRECTORY_READ,
        write=("Directory.ReadWrite.All",),
        entity_type="groupLifecyclePolicy",
        label="id",
    ),
)


GROUPS_GENERAL_SETTINGS = KindSpec(
    name="groupsGeneralSettings",
    title="Groups general settings",
    area=Area.ENTRA,
    collector="portal.groupsGeneralSettings",
    channel="portal",
    describes="Groups > General: self-service group management (Owners can manage group "
    "membership requests: selfServiceGroupManagementEnabled), access to groups features in "
    "My Groups (groupsInAccessPanelEnabled) and the other portal toggles Graph lacks.",
    source="GET {portal_url}/api/Directories/SsgmProperties/ (admin portal API)",
    incremental=Incremental.FULL,
    read_permissions=(),
    write_roles=("Cloud Application Administrator",),
    singleton=True,
    restore=("put",),
    notes="Read through the Entra admin portal's own API with the tenant's service account "
    "(Graph has no v1.0 endpoint, facts file §9). Backing it up needs no admin role; "
    "restoring needs Cloud Application Administrator. Without a service account profile "
    "this kind is skipped ('needs a service account profile'); nothing else is affected.",
)
