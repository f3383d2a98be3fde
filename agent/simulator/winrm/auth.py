"""WinRM authentication as a Windows bridge host's WinRM service does it.

- Basic: ``Authorization: Basic`` on every request, checked against the local users.
- Negotiate (NTLM or Kerberos, raw or inside SPNEGO): a challenge/response on one TCP
  connection — 401 with ``WWW-Authenticate: Negotiate <challenge>``, then the request carrying
  the client's answer is served and the connection stays authenticated (later requests on it
  carry no header). Over HTTPS the client's channel binding (tls-server-end-point: SHA-256 of
  our certificate) must match, as with CbtHardeningLevel=Strict. The acceptor is pyspnego's:
  NTLM reads users from the file ``NTLM_USER_FILE`` names (DOMAIN:USER:PASSWORD lines; written
  from the local users and named only while a token is checked); Kerberos (only after
  ``accept_kerberos``, and only with the gssapi package) decrypts the client's service ticket
  with the host's keytab (``KRB5_KTNAME`` while a token is checked), and a principal of the
  host's realm maps to the local user of the same name.
- CredSSP: the same connection-based exchange with ``CredSSP <token>``: TLS inside the tokens,
  NTLM inside that, then the client delegates its password, which must be the account's
  (pyspnego's CredSSP acceptor).

Over plain HTTP every later message is sealed with the connection's context (sealing.py).
- Certificate: ``Authorization: http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/
  mutual`` and a client certificate in the TLS handshake, issued by the client CA the host
  trusts, with the client-authentication EKU and a SAN UPN that a certificate mapping
  (``New-Item WSMan:\\localhost\\ClientCertificate -Subject <UPN> -Issuer <CA thumbprint>``)
  names for a local user.
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
_NEGOTIATE = ("negotiate", "ntlm", "kerberos")


def _refusals() -> tuple[type[BaseException], ...]:
    """What an acceptor raises for a token it will not accept: pyspnego's errors, GSSAPI's
    own, and an AttributeError when MIT refuses a Kerberos AP-REQ (GSS_S_BAD_BINDINGS: a
    channel binding that differs): gssapi defers that error to the context's next property
    read, which pyspnego makes on a context that was never established."""
    found: list[type[BaseException]] = [SpnegoError, AttributeError]
    with contextlib.suppress(ImportError):
        from gssapi.exceptions import GSSError

        found.append(GSSError)
    return tuple(found)


_REFUSALS = _refusals()
# pyspnego reads NTLM_USER_FILE (and MIT Kerberos KRB5_KTNAME) from the process environment:
# one check at a time.
_ACCEPTOR_LOCK = threading.Lock()


@dataclass
class Outcome:
    """Who the request is from, or the 401 to answer; ``headers`` go on the reply."""

    username: str | None
    challenge: Response | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # basic | negotiate (NTLM) | kerberos | credssp | certificate (recorded in the request log)
    method: str = ""


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
        # Kerberos: the host's keytab (HTTP/<host> key) and realm, once joined to one.
        self.keytab: Path | None = None
        self.realm = ""

    def map_certificate(self, upn: str, username: str) -> None:
        self.certificate_mappings[upn.lower()] = username

    def accept_kerberos(self, keytab: Path, realm: str) -> None:
        """Join the host to a Kerberos realm: Negotiate then accepts service tickets that
        ``keytab`` decrypts, from principals of ``realm``. Needs the gssapi package (and MIT
        Kerberos) in this process."""
        from spnego._gss import GSSAPIProxy  # the acceptor pyspnego's Negotiate uses

        if "kerberos" not in GSSAPIProxy.available_protocols():
            raise RuntimeError("Kerberos needs the gssapi and krb5 packages (pyspnego[kerberos])")
        self.keytab, self.realm = keytab, realm.upper()

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
            with self._acceptor_env():
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
        except _REFUSALS:
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
        method = protocol
        if protocol == "negotiate" and context.negotiated_protocol == "kerberos":
            method = "kerberos"
        user = self._local_user(str(context.client_principal or ""), method)
        if user is None:
            return self._refuse()
        if protocol == "credssp" and not self._delegated_ok(context, user):
            return self._refuse()
        state["user"], state["method"] = user, method
        # Over plain HTTP the client seals every message with this context (sealing.py).
        state["context"] = context
        return Outcome(user, headers=answer, method=method)

    def _local_user(self, principal: str, method: str) -> str | None:
        """The local user a logon names: DOMAIN\\user (NTLM, CredSSP) or user@REALM (Kerberos,
        only from the host's own realm)."""
        if method == "kerberos":
            name, _, realm = principal.rpartition("@")
            if not self.realm or realm.upper() != self.realm:
                return None
        else:
            name = principal.rsplit("\\", 1)[-1]
        return name if name in self.users else None

    def _delegated_ok(self, context: Any, user: str) -> bool:
        """CredSSP's point: the client delegates its password; it must be the account's."""
        creds = context.get_extra_info("client_credential")
        password = getattr(creds, "password", None)
        return isinstance(password, str) and hmac.compare_digest(
            password.encode(), self.users[user].encode()
        )

    @contextlib.contextmanager
    def _acceptor_env(self) -> Iterator[None]:
        """pyspnego's NTLM acceptor reads its users from the file NTLM_USER_FILE names; MIT
        Kerberos finds the acceptor's keys in the keytab KRB5_KTNAME names (no keytab: none)."""
        keytab = f"FILE:{self.keytab}" if self.keytab else "FILE:/nonexistent/no-keytab"
        names = {"NTLM_USER_FILE": str(self.ntlm_user_file), "KRB5_KTNAME": keytab}
        with _ACCEPTOR_LOCK:
            previous = {name: os.environ.get(name) for name in names}
            os.environ.update(names)
            try:
                yield
            finally:
                for name, value in previous.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value

    def _certificate(self, request: Request) -> str | None:
        der = request.peer_cert
        if der is None or not has_client_auth(der):
            return None
        upn = certificate_upn(der)
        user = self.certificate_mappings.get((upn or "").lower())
        return user if user in self.users else None
