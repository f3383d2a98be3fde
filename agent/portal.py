"""The Entra admin portal's own API, for the settings Graph has no endpoint for.

Only the "Groups > General" self-service settings are read this way (facts file §9:
``GET {portal}/api/Directories/SsgmProperties/``, a delegated token of the tenant's service
account for the Azure portal API resource). The API is undocumented, so everything about it
stays in this one adapter; writes are modelled conservatively as a PUT of the whole object.
"""

from __future__ import annotations

from typing import Any

import requests

from agent.auth import ServiceAccountTokenProvider
from agent.errors import AuthError, ConnectionFailed, GraphError, PermissionMissing

# The Azure portal API resource that the admin portal's own endpoints accept tokens for.
PORTAL_RESOURCE = "74658136-14ec-4630-ad9b-26e160ff0fc6"
PORTAL_SCOPE = f"{PORTAL_RESOURCE}/.default"
SSGM_PATH = "/api/Directories/SsgmProperties/"
# The SsgmProperties object's fields (facts file §9); the portal computes the read-only ones.
SSGM_FIELDS: tuple[str, ...] = (
    "objectId", "displayName", "usersCanRegisterApps", "showMyGroupsFeature",
    "myGroupsFeatureValue", "myGroupsGroupId", "myGroupsGroupName", "showMyAppsFeature",
    "myAppsFeatureValue", "myAppsGroupId", "myAppsGroupName", "showUserActivityReportsFeature",
    "userActivityReportsFeatureValue", "userActivityReportsGroupId",
    "userActivityReportsGroupName", "showRegisteredAuthMethodFeature",
    "registeredAuthMethodFeatureValue", "registeredAuthMethodGroupId",
    "registeredAuthMethodGroupName", "usersCanAddExternalUsers",
    "limitedAccessCanAddExternalUsers", "restrictDirectoryAccess", "groupsInAccessPanelEnabled",
    "selfServiceGroupManagementEnabled", "securityGroupsEnabled", "usersCanManageSecurityGroups",
    "office365GroupsEnabled", "usersCanManageOfficeGroups", "allUsersGroupEnabled",
    "scopingGroupIdForManagingSecurityGroups", "scopingGroupIdForManagingOfficeGroups",
    "scopingGroupNameForManagingSecurityGroups", "scopingGroupNameForManagingOfficeGroups",
    "objectIdForAllUserGroup", "allowInvitations", "isB2CTenant", "restrictNonAdminUsers",
    "enableLinkedInAppFamily", "toEnableLinkedInUsers", "toDisableLinkedInUsers",
    "linkedInSelectedGroupObjectId", "linkedInSelectedGroupDisplayName",
)  # fmt: skip
SSGM_READ_ONLY = frozenset({"objectId", "isB2CTenant"})
TIMEOUT = (10, 60)


class PortalClient:
    def __init__(
        self, base_url: str, session: requests.Session, tokens: ServiceAccountTokenProvider
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.tokens = tokens

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = self.base_url + path
        headers = {
            "Authorization": f"Bearer {self.tokens.token(PORTAL_SCOPE)}",
            "Accept": "application/json",
        }
        try:
            response = self.session.request(
                method, url, json=body, headers=headers, timeout=TIMEOUT
            )
        except requests.exceptions.SSLError:
            raise ConnectionFailed(
                f"Could not verify the TLS certificate of the admin portal API ({self.base_url}).",
                "Set ca_bundle for this tenant if a proxy or private CA signs it.",
            ) from None
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailed(
                f"Could not reach the admin portal API at {self.base_url} ({type(exc).__name__}).",
                "Check the tenant's portal_url and the network path to it.",
            ) from None
        if response.status_code == 401:
            raise AuthError(
                "The admin portal API refused the service account's token.",
                "Check the service account: the portal needs a delegated sign-in of a user "
                "without MFA.",
            )
        if response.status_code == 403:
            raise PermissionMissing(
                f"The service account may not {method} {path} on the admin portal API.",
                "Reading needs no admin role; writing Groups general settings needs the Cloud "
                "Application Administrator role for the service account.",
            )
        if response.status_code >= 400:
            raise GraphError(
                f"The admin portal API answered {method} {path} with HTTP {response.status_code}.",
                "Retry later; if it persists, the portal API may have changed.",
                status=response.status_code,
            )
        return response.json() if response.content else None

    def groups_general_settings(self) -> dict[str, Any]:
        result = self._call("GET", SSGM_PATH)
        if not isinstance(result, dict):
            raise GraphError(
                "The admin portal API returned no Groups general settings object.",
                "Retry later; if it persists, the portal API may have changed.",
            )
        return result

    def set_groups_general_settings(self, settings: dict[str, Any]) -> None:
        self._call("PUT", SSGM_PATH, settings)
