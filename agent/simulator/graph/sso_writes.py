"""SAML single sign-on writes on a service principal, as Graph v1.0 does them.

``addTokenSigningCertificate`` (servicePrincipal-addtokensigningcertificate) creates a
self-signed signing certificate: the service principal gains a Sign and a Verify key
credential (same customKeyIdentifier, the SHA-1 thumbprint) and the private key as a password
credential; the answer is the selfSignedCertificate. ``preferredTokenSigningKeyThumbprint``
must name one of the service principal's signing keys (the portal's "make certificate active";
UNCONFIRMED wording of the refusal).
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.simulator.ca import certificate
from agent.simulator.graph.directory import Directory, iso
from agent.simulator.graph.errors import bad_request, not_found

THUMBPRINT = "preferredTokenSigningKeyThumbprint"


def thumbprint_of(key: dict[str, Any]) -> str:
    """A key credential's thumbprint as Graph writes it in preferredTokenSigningKeyThumbprint
    (hex of the customKeyIdentifier bytes)."""
    raw = key.get("customKeyIdentifier") or ""
    try:
        return base64.b64decode(raw).hex().upper()
    except ValueError:
        return ""


def check_thumbprint(row: dict[str, Any] | None, props: dict[str, Any]) -> None:
    value = props.get(THUMBPRINT)
    if value in (None, ""):
        return
    keys = (row or {}).get("keyCredentials") or []
    signing = {thumbprint_of(k) for k in keys if k.get("usage") == "Sign"}
    if str(value).upper() not in signing:
        raise bad_request(
            f"The value '{value}' of property '{THUMBPRINT}' does not match the thumbprint of "
            "any signing certificate of the service principal."
        )


def add_token_signing_certificate(d: Directory, sid: str, body: Any) -> dict[str, Any]:
    params = body if isinstance(body, dict) else {}
    name = str(params.get("displayName") or "CN=Microsoft Azure Federated SSO Certificate")
    if not name.startswith("CN="):
        raise bad_request("The displayName of the certificate must start with 'CN='.")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    end = now + dt.timedelta(days=3 * 365)
    if params.get("endDateTime"):
        end = dt.datetime.fromisoformat(str(params["endDateTime"]).replace("Z", "+00:00"))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate(name[3:] or "SSO", key, not_before=now, not_after=end)
    der = cert.public_bytes(serialization.Encoding.DER)
    thumb = cert.fingerprint(hashes.SHA1())  # certificate thumbprints are SHA-1
    ident = base64.b64encode(thumb).decode()
    common = {
        "customKeyIdentifier": ident,
        "displayName": name,
        "endDateTime": iso(end.timestamp()),
        "startDateTime": iso(now.timestamp()),
        "type": "AsymmetricX509Cert",
    }
    sign = {**common, "key": None, "keyId": str(uuid.uuid4()), "usage": "Sign"}
    verify = {**common, "key": None, "keyId": str(uuid.uuid4()), "usage": "Verify"}
    secret = {
        "customKeyIdentifier": ident,
        "displayName": name,
        "endDateTime": common["endDateTime"],
        "hint": None,
        "keyId": sign["keyId"],
        "secretText": None,
        "startDateTime": common["startDateTime"],
    }
    with d.lock:
        row = d.row("servicePrincipal", sid)
        if row is None:
            raise not_found(sid)
        d.update(
            "servicePrincipal",
            sid,
            keyCredentials=[*(row.get("keyCredentials") or []), sign, verify],
            passwordCredentials=[*(row.get("passwordCredentials") or []), secret],
        )
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.selfSignedCertificate",
        **common,
        "key": base64.b64encode(der).decode(),
        "keyId": verify["keyId"],
        "thumbprint": thumb.hex().upper(),
        "usage": "Verify",
    }
