"""Signing key and JWTs for the simulated login endpoint, as Entra ID issues them.

Access tokens follow the v1 shape Graph receives from Entra for client-credential and ROPC
flows (``iss`` = ``https://sts.windows.net/{tid}/``); the simulated Graph verifies them with
``verify``. Id tokens (for msal's account cache) use the v2 issuer of the OIDC document.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from agent.simulator.world import SimTenant

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# The Azure portal API: the admin portal's own endpoints accept tokens for it (facts file §9).
PORTAL_RESOURCE = "74658136-14ec-4630-ad9b-26e160ff0fc6"

# Graph accepts its app-id URI and its app id as audience, with or without a trailing slash.
_ALIASES: dict[str, tuple[str, ...]] = {
    GRAPH_RESOURCE: (GRAPH_RESOURCE, GRAPH_RESOURCE + "/", GRAPH_APP_ID),
    GRAPH_APP_ID: (GRAPH_RESOURCE, GRAPH_RESOURCE + "/", GRAPH_APP_ID),
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenIssuer:
    """One RSA signing key (per simulator process) that signs and verifies every token."""

    def __init__(self, key_size: int = 2048) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        self._public = self._key.public_key()
        public_jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self._public))
        # kid = RFC 7638 thumbprint of the public key: stable for the key, unique across keys.
        canonical = json.dumps(
            {"e": public_jwk["e"], "kty": "RSA", "n": public_jwk["n"]}, separators=(",", ":")
        )
        self.kid = _b64url(hashlib.sha256(canonical.encode()).digest())
        self._jwk = {**public_jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}
        # A token's signature is checked once: an agent sends the same token on thousands of
        # requests, and an RSA verify per request cost the simulator a sixth of its CPU.
        # Lifetime is still checked on every use.
        self._verified: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )

    def issue(
        self,
        *,
        tenant: SimTenant,
        audience: str,
        app_id: str,
        subject: str,
        roles: list[str] | None = None,
        wids: list[str] | None = None,
        scp: str | None = None,
        upn: str | None = None,
        lifetime_s: int = 3599,
    ) -> str:
        """An access token: app-only when ``roles`` is given, delegated when ``scp`` is."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
            "tid": tenant.tenant_id,
            "appid": app_id,
            "azp": app_id,
            "appidacr": "1",
            "idtyp": "user" if upn else "app",
            "oid": subject,
            "sub": subject,
            "uti": _b64url(uuid.uuid4().bytes),
            "ver": "1.0",
        }
        if roles is not None:
            claims["roles"] = list(roles)
        if scp is not None:
            claims["scp"] = scp
        if wids:
            claims["wids"] = list(wids)
        if upn:
            claims["upn"] = upn
            claims["unique_name"] = upn
        return self._sign(claims)

    def issue_id_token(
        self,
        *,
        issuer: str,
        tenant: SimTenant,
        client_id: str,
        oid: str,
        username: str,
        lifetime_s: int = 3599,
    ) -> str:
        """A v2 id token for a signed-in user (msal builds its account cache from it)."""
        now = int(time.time())
        return self._sign(
            {
                "aud": client_id,
                "iss": issuer,
                "iat": now,
                "nbf": now,
                "exp": now + lifetime_s,
                "oid": oid,
                "sub": _b64url(hashlib.sha256(f"{oid}:{client_id}".encode()).digest()),
                "tid": tenant.tenant_id,
                "preferred_username": username,
                "name": username.split("@", 1)[0],
                "ver": "2.0",
            }
        )

    def verify(self, token: str, audience: str | tuple[str, ...]) -> dict[str, Any] | None:
        """The claims if the signature, lifetime and audience are good, else None."""
        wanted = (audience,) if isinstance(audience, str) else audience
        accepted: list[str] = []
        for aud in wanted:
            accepted.extend(_ALIASES.get(aud.rstrip("/"), (aud,)))
        key = (token, tuple(accepted))
        if (known := self._verified.get(key)) is not None:
            return known if time.time() < known["exp"] else None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                audience=accepted,
                options={"require": ["exp", "iat", "aud", "iss", "tid"]},
                leeway=0,
            )
        except jwt.PyJWTError:
            return None
        if len(self._verified) >= 1024:
            self._verified.clear()
        self._verified[key] = claims
        return claims

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self._jwk)]}
