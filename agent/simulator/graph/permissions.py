"""Application permissions (token ``roles``) that read or write the directory-object kinds
beyond users and groups (facts file §4; any one of a set is enough)."""

from __future__ import annotations

DIRECTORY_READ = frozenset({"Directory.Read.All", "Directory.ReadWrite.All"})
READ_APPS = DIRECTORY_READ | {"Application.Read.All", "Application.ReadWrite.All"}
WRITE_APPS = frozenset({"Application.ReadWrite.All", "Directory.ReadWrite.All"})
READ_GRANTS = DIRECTORY_READ | {
    "DelegatedPermissionGrant.Read.All",
    "DelegatedPermissionGrant.ReadWrite.All",
}
READ_AUS = DIRECTORY_READ | {"AdministrativeUnit.Read.All", "AdministrativeUnit.ReadWrite.All"}
WRITE_AUS = frozenset({"AdministrativeUnit.ReadWrite.All", "Directory.ReadWrite.All"})
READ_DEVICES = DIRECTORY_READ | {"Device.Read.All", "Device.ReadWrite.All"}
READ_ROLES = DIRECTORY_READ | {
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
    "RoleManagement.Read.All",
}
READ_SKUS = DIRECTORY_READ | {
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "LicenseAssignment.Read.All",
}
# BitLocker: listing key metadata needs ReadBasic or Read; the key itself needs Read.All.
# Not implied by Directory.Read.All (opt-in; not in TenantSpec's default permissions).
READ_BITLOCKER_BASIC = frozenset({"BitLockerKey.ReadBasic.All", "BitLockerKey.Read.All"})
READ_BITLOCKER_KEY = frozenset({"BitLockerKey.Read.All"})

# deletedItems casts beyond user and group (facts file §3).
DELETED_READ = {
    "application": READ_APPS,
    "servicePrincipal": READ_APPS,
    "administrativeUnit": READ_AUS,
}
DELETED_WRITE = {
    "application": WRITE_APPS,
    "servicePrincipal": WRITE_APPS,
    "administrativeUnit": WRITE_AUS,
}
