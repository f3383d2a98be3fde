"""Entra tenant configuration kinds: directory roles as RBAC (definitions, assignments, PIM
eligibility), group settings, the organization, its domains and company branding.

All are read in full every run (facts file §4 for paths and permissions); unchanged objects
keep their blob and cost no new version. The activated-role kinds (directoryRole and its
members, entra_directory.py) stay: they are what the directory shows, these are what a
restore of role assignments needs (role definition ids, principals and scopes).
"""

from __future__ import annotations

from dataclasses import replace

from agent.kinds.entra_config import config_kind
from agent.kinds.spec import DIRECTORY_READ, Area, Incremental, KindSpec

# Who holds a role: an assignment naming a principal that is gone and not restored is skipped
# with that reason (Graph refuses it with 404).
PRINCIPAL = tuple(("principalId", k) for k in ("user", "group", "servicePrincipal"))

ROLE_READ = (
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "RoleManagement.ReadWrite.Directory",
    *DIRECTORY_READ,
)
# PIM rejects Directory.Read.All and RoleManagement.Read.All (403 PermissionScopeNotGranted).
ELIGIBILITY_READ = (
    "RoleEligibilitySchedule.Read.Directory",
    "RoleManagement.Read.Directory",
    "RoleEligibilitySchedule.ReadWrite.Directory",
    "RoleManagement.ReadWrite.Directory",
)
BRANDING_READ = (
    "OrganizationalBranding.Read.All",
    "Organization.Read.All",
    "OrganizationalBranding.ReadWrite.All",
    "Organization.ReadWrite.All",
)

COMPANY_BRANDING = KindSpec(
    name="companyBranding",
    title="Company branding",
    area=Area.ENTRA,
    collector="graph.branding",
    describes="Sign-in page branding, default and per language: texts, colours, layout and "
    "the images (banner logo, square logos, background, favicon, header logo, custom CSS), "
    "each image stored as its own repository blob.",
    source="GET /organization/{id}/branding/localizations (+ each image stream)",
    incremental=Incremental.FULL,
    read_permissions=BRANDING_READ,
    write_permissions=("OrganizationalBranding.ReadWrite.All", "Organization.ReadWrite.All"),
    entity_type="organizationalBrandingLocalization",
    path="/organization/{id}/branding/localizations",
    label="id",
    restore=("patch", "recreate"),
    unordered=("cdnList",),
    notes="One object per localization (id 0 is the default branding). Each image is read "
    "from its stream URL; one that is not set (404 or an empty answer) is recorded as absent. "
    "The object refers to the image blobs by id, so `verify` checks them and `export` writes "
    "them out next to the JSON. Restore PATCHes the text and PUTs each image whose bytes "
    "differ from the snapshot's blob (byte-equal afterwards); a deleted localization is created "
    "again. An image added since is reported, not removed (Graph documents no call for that); "
    "the images' relative URLs and the CDN list are set by Graph on upload. An incremental "
    "run reads only the images whose relative URL (the version the CDN serves) changed.",
)

TENANT_CONFIG_KINDS: tuple[KindSpec, ...] = (
    replace(
        config_kind(
            "roleDefinition",
            "Directory role definitions",
            "/roleManagement/directory/roleDefinitions",
            "Built-in and custom directory role definitions with their permissions.",
            read=ROLE_READ,
            write=("RoleManagement.ReadWrite.Directory",),
            entity_type="unifiedRoleDefinition",
        ),
        unordered=(
            "resourceScopes",
            "rolePermissions.allowedResourceActions",
            "rolePermissions.excludedResourceActions",
        ),
    ),
    config_kind(
        "roleAssignment",
        "Directory role assignments",
        "/roleManagement/directory/roleAssignments",
        "Active role assignments: principal, role and scope (tenant or administrative unit).",
        read=ROLE_READ,
        write=("RoleManagement.ReadWrite.Directory",),
        entity_type="unifiedRoleAssignment",
        label="id",
        restore=("recreate",),
        after=("roleDefinition", "user", "group", "servicePrincipal", "administrativeUnit"),
        references=PRINCIPAL,
    ),
    # Its own collector: tenants without Entra ID P2 answer 400 AadPremiumLicenseRequired.
    replace(
        config_kind(
            "roleEligibilitySchedule",
            "PIM role eligibility",
            "/roleManagement/directory/roleEligibilitySchedules",
            "Privileged Identity Management eligible role assignments and their schedules.",
            read=ELIGIBILITY_READ,
            write=(
                "RoleEligibilitySchedule.ReadWrite.Directory",
                "RoleManagement.ReadWrite.Directory",
            ),
            entity_type="unifiedRoleEligibilitySchedule",
            label="id",
            restore=("recreate",),
            after=("roleDefinition", "user", "group"),
            references=PRINCIPAL,
            notes="Needs Microsoft Entra ID P2 or ID Governance: in a tenant without it Graph "
            "answers 400 AadPremiumLicenseRequired and the kind is skipped as not licensed.",
        ),
        collector="graph.pim",
    ),
    replace(
        config_kind(
            "groupSetting",
            "Group settings",
            "/groupSettings",
            "Directory settings from templates, e.g. Group.Unified (who may create Microsoft 365 "
            "groups, guest access, naming, classification), banned passwords, consent.",
            read=("GroupSettings.Read.All", "GroupSettings.ReadWrite.All", *DIRECTORY_READ),
            write=("GroupSettings.ReadWrite.All", "Directory.ReadWrite.All"),
            entity_type="groupSetting",
            notes="Restore PATCHes the values; a deleted setting is created again from its "
            "templateId (new id, matched by template on the next restore).",
        ),
        unordered=("values[name]",),
    ),
    replace(
        config_kind(
            "organization",
            "Organization",
            "/organization",
            "Tenant profile: name, address, technical and privacy contacts, verified domains.",
            read=("Organization.Read.All", "Organization.ReadWrite.All", *DIRECTORY_READ),
            write=("Organization.ReadWrite.All",),
            entity_type="organization",
            volatile=("onPremisesLastSyncDateTime",),  # moves with every directory sync
            restore=("patch",),
            notes="Restore writes the five properties Graph lets a client update "
            "(marketingNotificationEmails, privacyProfile, securityComplianceNotificationMails "
            "and …Phones, technicalNotificationMails); the rest is read-only and reported. "
            "onPremisesSyncEnabled is never written by a restore (it switches directory sync).",
        ),
        unordered=(
            "businessPhones",
            "marketingNotificationEmails",
            "securityComplianceNotificationMails",
            "securityComplianceNotificationPhones",
            "technicalNotificationMails",
            "verifiedDomains[name]",
        ),
    ),
    replace(
        config_kind(
            "domain",
            "Domains",
            "/domains",
            "Domains with verification, default/initial flags and supported services.",
            read=("Domain.Read.All", "Domain.ReadWrite.All", *DIRECTORY_READ),
            write=("Domain.ReadWrite.All", "Directory.ReadWrite.All"),
            entity_type="domain",
            label="id",
            restore=("patch", "recreate"),
            notes="Restore writes authenticationType, isDefault, supportedServices and the "
            "password windows. A removed domain is added again unverified: the report names "
            "the DNS TXT record Entra asks for; once it exists, the next restore verifies the "
            "domain and writes the rest (an unverified domain takes neither services nor "
            "default).",
        ),
        unordered=("supportedServices",),
    ),
    COMPANY_BRANDING,
)
