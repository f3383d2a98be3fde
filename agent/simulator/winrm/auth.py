"""WinRM authentication as a Windows bridge host's WinRM service does it.

- Basic: ``Authorization: Basic`` on every request, checked against the local users.
- Negotiate (NTLM, raw or inside SPNEGO): a challenge/response on one TCP connection — 401
  with ``WWW-Authenticate: Negotiate <challenge>``, then the request carrying the client's
  answer is served and the connection stays authenticated (later requests on it carry no
  header). Over HTTPS the client's channel binding (tls-server-end-point: SHA-256 of our
  certificate) must match, as with CbtHardeningLevel=Strict. The acceptor is pyspnego's
  NTLM, which reads users from the file ``NTLM_USER_FILE`` names (DOMAIN:USER:PASSWORD lines);
  it is written from the local users and named only while a token is checked.
- CredSSP (over HTTPS): the same connection-based exchange with ``CredSSP <token>``: TLS
  inside the tokens, NTLM inside that, then the client delegates its password, which must be
  the account's (pyspnego's CredSSP acceptor).
- Certificate: ``Authorization: http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/
  mutual`` and a client certificate in the TLS handshake, issued by the client CA the host
  trusts, with the client-authentication EKU and a SAN UPN that a certificate mapping
  (``New-Item WSMan:\\localhost\\ClientCertificate -Subject <UPN> -Issuer <CA thumbprint>``)
  names for a local user.

Kerberos needs a KDC, which does not exist here: it is not offered (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import spnego
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

from agent.simulator.ca import certificate_upn, has_client_auth
from agent.simulator.httpserver import Request, Response

CERTIFICATE_PROFILE = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
_NEGOTIATE = ("negotiate", "ntlm")
# pyspnego reads NTLM_USER_FILE from the process environment: one check at a time.
_NTLM_LOCK = threading.Lock()


@dataclass
class Outcome:
    """Who the request is from, or the 401 to answer; ``headers`` go on the reply."""

    username: str | None
    challenge: Response | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str = ""  # basic | negotiate | certificate (recorded in the request log)


class WinRMAuth:
    """The WinRM service's Auth settings (Basic, Negotiate, Certificate) and local users."""

    def __init__(
        self,
        users: dict[str, str],
        ntlm_user_file: Path,
        *,
        server_cert_pem: bytes | None = None,
        client_ca_thumbprint: str | None = None,
    ) -> None:
        self.users = dict(users)
        self.methods = {"basic", "negotiate", "certificate", "credssp"}
        self.reject_all = False  # fault hook: every request gets 401
        # Client certificate mappings: UPN -> local user (Subject of the mapping).
        self.certificate_mappings: dict[str, str] = {}
        self.client_ca_thumbprint = client_ca_thumbprint
        self._cbt: bytes | None = None
        if server_cert_pem is not None:
            der = x509.load_pem_x509_certificate(server_cert_pem).public_bytes(Encoding.DER)
            self._cbt = b"tls-server-end-point:" + hashlib.sha256(der).digest()
        self.ntlm_user_file = ntlm_user_file
        ntlm_user_file.parent.mkdir(parents=True, exist_ok=True)
        ntlm_user_file.touch(mode=0o600, exist_ok=True)
        ntlm_user_file.write_text("".join(f":{u}:{p}\n" for u, p in self.users.items()))

    def map_certificate(self, upn: str, username: str) -> None:
        self.certificate_mappings[upn.lower()] = username

    # -- per request ------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Outcome:
        if self.reject_all:
            return self._refuse()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        lowered = scheme.lower()
        if lowered == "basic" and "basic" in self.methods:
            user = self._basic(token)
            return Outcome(user, method="basic") if user else self._refuse()
        if lowered in _NEGOTIATE and token and "negotiate" in self.methods:
            return self._negotiate(request, scheme, token)
        if lowered == "credssp" and token and "credssp" in self.methods:
            return self._negotiate(request, scheme, token)
        if scheme == CERTIFICATE_PROFILE and "certificate" in self.methods:
            mapped = self._certificate(request)
            return Outcome(mapped, method="certificate") if mapped else self._refuse()
        if not scheme and request.connection.get("user"):
            # A connection authenticated by Negotiate or CredSSP earlier.
            return Outcome(request.connection["user"], method=request.connection["method"])
        return self._refuse()

    def _refuse(self, headers: dict[str, str] | None = None) -> Outcome:
        offered = []
        if "negotiate" in self.methods:
            offered.append("Negotiate")
        if "basic" in self.methods:
            offered.append('Basic realm="WSMAN"')
        if "credssp" in self.methods:
            offered.append("CredSSP")
        response = Response(
            401,
            b"",
            {"WWW-Authenticate": ", ".join(offered), "Content-Length": "0", **(headers or {})},
        )
        return Outcome(None, challenge=response)

    def _basic(self, token: str) -> str | None:
        try:
            username, _, password = (
                base64.b64decode(token, validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = self.users.get(username)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        return username

    def _negotiate(self, request: Request, scheme: str, token: str) -> Outcome:
        state = request.connection
        for key in ("user", "method", "context"):  # a new handshake replaces them
            state.pop(key, None)
        try:
            in_token = base64.b64decode(token, validate=True)
        except binascii.Error:
            return self._refuse()
        protocol = "credssp" if scheme.lower() == "credssp" else "negotiate"
        context = state.get(protocol)
        try:
            with self._ntlm_users():
                if context is None:
                    tls = request.base_url.startswith("https:")  # no binding over plain HTTP
                    cbt = self._cbt if tls else None
                    bindings = GssChannelBindings(application_data=cbt) if cbt else None
                    # CredSSP binds to its own inner TLS channel, not to ours.
                    context = spnego.server(
                        protocol=protocol,
                        channel_bindings=None if protocol == "credssp" else bindings,
                    )
                out_token = context.step(in_token)
        except SpnegoError:
            state.pop(protocol, None)
            return self._refuse()  # wrong password, bad binding: access denied
        answer = (
            {"WWW-Authenticate": f"{scheme} {base64.b64encode(out_token).decode()}"}
            if out_token
            else {}
        )
        if not context.complete:
            state[protocol] = context
            return self._refuse(answer)
        state.pop(protocol, None)
        principal = str(context.client_principal or "")
        user = principal.rsplit("\\", 1)[-1]
        if user not in self.users:
            return self._refuse()
        if protocol == "credssp" and not self._delegated_ok(context, user):
            return self._refuse()
        state["user"], state["method"] = user, protocol
        # Over plain HTTP the client seals every message with this context (sealing.py).
        state["context"] = context if protocol == "negotiate" else None
        return Outcome(user, headers=answer, method=protocol)

    def _delegated_ok(self, context: Any, user: str) -> bool:
        """CredSSP's point: the client delegates its password; it must be the account's."""
        creds = context.get_extra_info("client_credential")
        password = getattr(creds, "password", None)
        return isinstance(password, str) and hmac.compare_digest(
            password.encode(), self.users[user].encode()
        )

    @contextlib.contextmanager
    def _ntlm_users(self) -> Iterator[None]:
        """pyspnego's NTLM acceptor reads its users from the file NTLM_USER_FILE names."""
        with _NTLM_LOCK:
            previous = os.environ.get("NTLM_USER_FILE")
            os.environ["NTLM_USER_FILE"] = str(self.ntlm_user_file)
            try:
                yield
            finally:
                if previous is None:
                    os.environ.pop("NTLM_USER_FILE", None)
                else:
                    os.environ["NTLM_USER_FILE"] = previous

    def _certificate(self, request: Request) -> str | None:
        der = request.peer_cert
        if der is None or not has_client_auth(der):
            return None
        upn = certificate_upn(der)
        user = self.certificate_mappings.get((upn or "").lower())
        return user if user in self.users else None
