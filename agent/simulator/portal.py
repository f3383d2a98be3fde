"""The Entra admin portal's own API (main.iam.ad.ext.azure.com), as far as the agent uses it.

Only ``/api/Directories/SsgmProperties/`` — the "Groups > General" settings Graph has no
endpoint for (facts file §9). The API is undocumented: reads are modelled on what security
tools observe (a delegated user token for the Azure portal API resource); writes are modelled
conservatively as a PUT of the whole object, refused unless the caller holds Cloud Application
Administrator or Global Administrator (the product documentation's requirement). Error bodies
use the ASP.NET Web API shape ``{"Message": …}`` (UNCONFIRMED for this API).

The settings are per tenant, kept on the tenant's ``Directory`` (``ssgm``) so they persist and
churn with the rest of the simulated state.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from agent.simulator.graph.directory import Directory
from agent.simulator.httpserver import Request, Response, Router
from agent.simulator.tokens import PORTAL_RESOURCE, TokenIssuer
from agent.simulator.world import ROLE_TEMPLATE_IDS, World

SSGM_PATH = "/api/Directories/SsgmProperties"
WRITERS = frozenset(
    ROLE_TEMPLATE_IDS[r] for r in ("Cloud Application Administrator", "Global Administrator")
)

# Field → JSON type, in the order the portal answers them (facts file §9).
_BOOL, _INT, _STR, _LIST = "bool", "int", "str", "list"
FIELDS: dict[str, str] = {
    "objectId": _STR,
    "displayName": _STR,
    "usersCanRegisterApps": _BOOL,
    "showMyGroupsFeature": _BOOL,
    "myGroupsFeatureValue": _INT,
    "myGroupsGroupId": _STR,
    "myGroupsGroupName": _STR,
    "showMyAppsFeature": _BOOL,
    "myAppsFeatureValue": _INT,
    "myAppsGroupId": _STR,
    "myAppsGroupName": _STR,
    "showUserActivityReportsFeature": _BOOL,
    "userActivityReportsFeatureValue": _INT,
    "userActivityReportsGroupId": _STR,
    "userActivityReportsGroupName": _STR,
    "showRegisteredAuthMethodFeature": _BOOL,
    "registeredAuthMethodFeatureValue": _INT,
    "registeredAuthMethodGroupId": _STR,
    "registeredAuthMethodGroupName": _STR,
    "usersCanAddExternalUsers": _BOOL,
    "limitedAccessCanAddExternalUsers": _BOOL,
    "restrictDirectoryAccess": _BOOL,
    "groupsInAccessPanelEnabled": _BOOL,
    "selfServiceGroupManagementEnabled": _BOOL,
    "securityGroupsEnabled": _BOOL,
    "usersCanManageSecurityGroups": _BOOL,
    "office365GroupsEnabled": _BOOL,
    "usersCanManageOfficeGroups": _BOOL,
    "allUsersGroupEnabled": _BOOL,
    "scopingGroupIdForManagingSecurityGroups": _STR,
    "scopingGroupIdForManagingOfficeGroups": _STR,
    "scopingGroupNameForManagingSecurityGroups": _STR,
    "scopingGroupNameForManagingOfficeGroups": _STR,
    "objectIdForAllUserGroup": _STR,
    "allowInvitations": _BOOL,
    "isB2CTenant": _BOOL,
    "restrictNonAdminUsers": _BOOL,
    "enableLinkedInAppFamily": _INT,
    "toEnableLinkedInUsers": _LIST,
    "toDisableLinkedInUsers": _LIST,
    "linkedInSelectedGroupObjectId": _STR,
    "linkedInSelectedGroupDisplayName": _STR,
}
READ_ONLY = ("objectId", "isB2CTenant")
# The toggles an administrator flips in "Groups > General" (churn picks among these).
TOGGLES = (
    "selfServiceGroupManagementEnabled",
    "groupsInAccessPanelEnabled",
    "usersCanManageSecurityGroups",
    "usersCanManageOfficeGroups",
    "restrictNonAdminUsers",
    "allUsersGroupEnabled",
)


def default_settings(directory: Directory, display_name: str) -> dict[str, Any]:
    """A new tenant's settings (Entra's defaults: self-service on, nothing restricted)."""
    values: dict[str, Any] = {name: None for name in FIELDS}
    values.update({name: False for name, kind in FIELDS.items() if kind == _BOOL})
    values.update({name: 0 for name, kind in FIELDS.items() if kind == _INT})
    values.update({name: [] for name, kind in FIELDS.items() if kind == _LIST})
    values.update(
        objectId=directory.tenant_id,
        displayName=display_name,
        usersCanRegisterApps=True,
        usersCanAddExternalUsers=True,
        groupsInAccessPanelEnabled=True,
        securityGroupsEnabled=True,
        usersCanManageSecurityGroups=True,
        office365GroupsEnabled=True,
        usersCanManageOfficeGroups=True,
        allowInvitations=True,
        enableLinkedInAppFamily=0,
    )
    return values


def settings_of(directory: Directory, display_name: str) -> dict[str, Any]:
    """The tenant's settings, created with the defaults on first use (caller holds the lock)."""
    if directory.ssgm is None:
        directory.ssgm = default_settings(directory, display_name)
    return directory.ssgm


def churn_settings(directory: Directory, rng: random.Random) -> list[str]:
    """Flip one toggle now and then, as an administrator would (caller holds the lock)."""
    if directory.ssgm is None or rng.random() >= 0.5:
        return []
    name = rng.choice(TOGGLES)
    directory.ssgm[name] = not directory.ssgm[name]
    return [name]


def _problem(body: Any, current: dict[str, Any]) -> str | None:
    """Why a PUT body is not a whole, well-typed settings object (None: it is)."""
    if not isinstance(body, dict):
        return "The request body must be the whole SsgmProperties object."
    missing = [n for n in FIELDS if n not in body]
    unknown = [n for n in body if n not in FIELDS]
    if missing or unknown:
        return f"Missing properties: {missing}; unknown properties: {unknown}."
    checks: dict[str, Callable[[Any], bool]] = {
        _BOOL: lambda v: isinstance(v, bool),
        _INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
        _STR: lambda v: v is None or isinstance(v, str),
        _LIST: lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    }
    wrong = [n for n, kind in FIELDS.items() if not checks[kind](body[n])]
    if wrong:
        return f"Properties with a value of the wrong type: {wrong}."
    changed = [n for n in READ_ONLY if body[n] != current[n]]
    if changed:
        return f"Read-only properties cannot change: {changed}."
    return None


def _message(status: int, text: str) -> Response:
    return Response.json({"Message": text}, status, {"Content-Type": "application/json"})


class PortalApi:
    def __init__(self, world: World, issuer: TokenIssuer) -> None:
        self.world = world
        self.issuer = issuer

    def _caller(self, request: Request) -> tuple[dict[str, Any], Directory, str] | Response:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        claims = self.issuer.verify(token, PORTAL_RESOURCE) if token else None
        # The portal serves people: an app-only token (no scp) is refused like a bad one.
        if claims is None or "scp" not in claims:
            return _message(401, "Authorization has been denied for this request.")
        tenant = self.world.find(str(claims["tid"]))
        if tenant is None or tenant.directory is None:
            return _message(401, "Authorization has been denied for this request.")
        return claims, tenant.directory, tenant.display_name

    def get(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        _, directory, name = caller
        with directory.lock:
            body = dict(settings_of(directory, name))
        return Response.json(body, 200, {"Content-Type": "application/json; charset=utf-8"})

    def put(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        claims, directory, name = caller
        if not WRITERS & set(claims.get("wids") or ()):
            return _message(
                403,
                "The user does not have the Cloud Application Administrator or Global "
                "Administrator role required to change these settings.",
            )
        try:
            body = request.json()
        except ValueError:
            return _message(400, "The request body is not JSON.")
        with directory.lock:
            current = settings_of(directory, name)
            problem = _problem(body, current)
            if problem is not None:
                return _message(400, problem)
            current.update(body)
        return Response.empty(204)


def register_portal_routes(router: Router, world: World, issuer: TokenIssuer) -> None:
    api = PortalApi(world, issuer)
    router.add("GET", SSGM_PATH, api.get)
    router.add("PUT", SSGM_PATH, api.put)
