"""Restore of enterprise apps' single sign-on configuration, through Graph.

The seed's SSO fields are Graph properties (kinds/entra_directory.py): currentSingleSignOnMode
→ the service principal's preferredSingleSignOnMode, samlSingleSignOnSettings, the active
signing certificate → preferredTokenSigningKeyThumbprint, Identifier (Entity ID) → the service
principal's servicePrincipalNames, Attributes and Claims → the claims mapping (and token
issuance) policy linked to the service principal and the application's SAML optionalClaims.
All are written with the service app's Graph token, but — as the seed requires — only when
the tenant's service account holds Application Administrator: checked while planning, so a dry
run shows the same skips (those properties, or the object) as the real run.

A SAML app recreated since the snapshot has lost its signing certificate (no private key is
ever backed up): restore creates a new one (addTokenSigningCertificate), makes it the active
one and reports that the IdP metadata changed, so the relying party must get the new
certificate. The same happens when the backed-up thumbprint names a certificate the app no
longer holds.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from agent.graph import GraphClient
from agent.kinds import KindSpec
from agent.restore.actions import Action
from agent.restore.app_links import PolicyLinks
from agent.restore.app_principals import AppServicePrincipals
from agent.restore.restorers import GraphObjects, register
from agent.restore.session import RestoreSession, current, refuse

ROLE = "Application Administrator"
THUMBPRINT = "preferredTokenSigningKeyThumbprint"
SP_SSO = frozenset({"preferredSingleSignOnMode", "samlSingleSignOnSettings", THUMBPRINT})
CERTIFICATE_YEARS = 3
NEW_CERTIFICATE = (
    "a new SAML signing certificate {thumb} is now active (no private key is ever backed up): "
    "the IdP metadata changed — give the relying party (the application's SAML settings) the "
    "new certificate or re-import the federation metadata"
)


def is_saml(obj: dict[str, Any]) -> bool:
    return obj.get("preferredSingleSignOnMode") == "saml"


def signing_thumbprints(sp: dict[str, Any]) -> set[str]:
    out = set()
    for key in sp.get("keyCredentials") or []:
        if key.get("usage") == "Sign" and key.get("customKeyIdentifier"):
            out.add(base64.b64decode(key["customKeyIdentifier"]).hex().upper())
    return out


def sso_properties(action: Action) -> list[str]:
    """The SSO properties a planned write of a service principal carries."""
    if action.action == "patch":
        saml = is_saml(action.snapshot)
        return [p for p in action.patch if p in SP_SSO or (saml and p == "servicePrincipalNames")]
    # An undelete brings the object back as it was; a recreate writes the SSO properties.
    return sorted(SP_SSO) if action.action == "recreate" and is_saml(action.snapshot) else []


def _refuse_properties(action: Action, props: list[str], why: str) -> None:
    """Leave ``props`` out of a patch (noted with ``why``); nothing left: the action is a skip."""
    if action.action != "patch":
        refuse(action, why)
        return
    for prop in props:
        action.patch.pop(prop, None)
        action.notes[prop] = why
    if not action.patch:
        refuse(action, why)


def _missing_role(what: str, session: RestoreSession) -> str:
    why = session.missing_account_role(ROLE)
    return f"{what}: {why}" if why else ""


class ServicePrincipals(AppServicePrincipals):
    def check(self, actions: list[Action], session: RestoreSession) -> None:
        sso = [(a, props) for a in actions if (props := sso_properties(a))]
        why = _missing_role("SSO mode, SAML settings, signing certificate, identifiers", session) if sso else ""  # fmt: skip
        for action, props in sso if why else ():
            _refuse_properties(action, props, why)

    def create(self, g: GraphClient, spec: KindSpec, body: dict[str, Any]) -> dict[str, Any]:
        wanted = body.pop(THUMBPRINT, None)  # the new object holds no certificate yet
        created = g.post(spec.path or "/servicePrincipals", body)
        if wanted and is_saml(body):
            self._new_certificate(g, spec, str(created["id"]), str(body.get("displayName") or ""))
        return created

    def patch(self, g: GraphClient, spec: KindSpec, oid: str, body: dict[str, Any]) -> None:
        wanted = body.get(THUMBPRINT)
        if wanted:
            now = g.get_json(f"{spec.path}/{oid}", {"$select": "displayName,keyCredentials"})
            if str(wanted).upper() not in signing_thumbprints(now):
                body = {k: v for k, v in body.items() if k != THUMBPRINT}
                self._new_certificate(g, spec, oid, str(now.get("displayName") or ""))
        if body:
            g.patch(f"{spec.path}/{oid}", body)

    def _new_certificate(self, g: GraphClient, spec: KindSpec, oid: str, name: str) -> None:
        end = dt.datetime.now(dt.UTC) + dt.timedelta(days=365 * CERTIFICATE_YEARS)
        cert = g.post(
            f"{spec.path}/{oid}/addTokenSigningCertificate",
            {
                "displayName": f"CN={name or 'Microsoft Azure Federated SSO Certificate'}",
                "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        thumb = str(cert["thumbprint"])
        g.patch(f"{spec.path}/{oid}", {THUMBPRINT: thumb})
        current().remark(spec.name, oid, THUMBPRINT, NEW_CERTIFICATE.format(thumb=thumb))


class Applications(GraphObjects):
    def check(self, actions: list[Action], session: RestoreSession) -> None:
        # The SAML attributes and claims an app's token carries (optionalClaims.saml2Token).
        claims = [
            a
            for a in actions
            if a.action == "patch"
            and "optionalClaims" in a.patch
            and (a.snapshot.get("optionalClaims") or {}).get("saml2Token")
        ]
        why = _missing_role("SAML claims", session) if claims else ""
        for action in claims if why else ():
            _refuse_properties(action, ["optionalClaims"], why)


class SsoLinks(PolicyLinks):
    """The claims mapping and token issuance policy of an enterprise app ($ref links)."""

    def check(self, actions: list[Action], session: RestoreSession) -> None:
        why = _missing_role("attributes and claims, token issuance", session) if actions else ""
        for action in actions if why else ():
            refuse(action, why)


SERVICE_PRINCIPALS, APPLICATIONS, SSO_LINKS = ServicePrincipals(), Applications(), SsoLinks()
register(SERVICE_PRINCIPALS, "servicePrincipal")
register(APPLICATIONS, "application")
register(SSO_LINKS, "servicePrincipalClaimsMappingPolicy", "servicePrincipalTokenIssuancePolicy")
