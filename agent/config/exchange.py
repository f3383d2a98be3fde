"""The [tenants.<name>.exchange] section: the bridge host and how it connects to Exchange."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from agent.config.fields import DOMAIN, Model, invalid, secret_ref

BRIDGE_AUTHS = ("basic", "ntlm", "negotiate", "kerberos", "certificate", "credssp")
EXCHANGE_CONNECTS = ("certificate_thumbprint", "certificate_file", "service_account")


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class ExchangeConfig(Model):
    """How the agent reaches Exchange Online: PSRP to a bridge host that runs the
    ExchangeOnlineManagement module (facts file §6), and how that host connects."""

    bridge_url: str
    auth: Literal["basic", "ntlm", "negotiate", "kerberos", "certificate", "credssp"] = "negotiate"
    # The bridge host account (WinRM). Password by reference; kerberos may use the ticket cache.
    username: str = ""
    password: str = ""
    # auth = "certificate": PEM file with the client certificate and its private key.
    client_certificate: str = ""
    # CA(s) for the bridge host's TLS certificate; empty = the tenant's ca_bundle, else the
    # default trust store.
    ca_bundle: str = ""
    # Lab only: plain-HTTP WinRM (credentials and data cross the network unencrypted).
    allow_http: bool = False
    organization: str
    connect: Literal["certificate_thumbprint", "certificate_file", "service_account"] = (
        "certificate_thumbprint"
    )
    certificate_thumbprint: str = ""
    certificate_file: str = ""  # path on the bridge host
    certificate_password: str = ""
    # Settings kinds to back up: kind names, "exchange", "defender" or "*".
    settings: list[str] = Field(default_factory=lambda: ["*"])
    operation_timeout_s: int = Field(default=20, ge=5, le=600)
    call_timeout_s: int = Field(default=900, ge=1, le=7200)
    connect_timeout_s: int = Field(default=30, ge=1, le=600)
    # Distribution groups per Export-EbDistributionGroups page (the agent holds one page).
    group_page_size: int = Field(default=100, ge=1, le=1000)

    @field_validator("bridge_url")
    @classmethod
    def _bridge_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s:]+(:\d+)?(/[^\s]*)?$", value):
            raise invalid(
                f"must be an https:// URL of the bridge host's WinRM listener (got '{value}')",
                'Write e.g. "https://bridge01.contoso.local:5986/wsman".',
            )
        return value.rstrip("/")

    @field_validator("password", "certificate_password")
    @classmethod
    def _refs(cls, value: str) -> str:
        return secret_ref(value) if value else value

    @field_validator("client_certificate")
    @classmethod
    def _client_cert(cls, value: str) -> str:
        if value and not value.startswith("file:"):
            raise invalid(
                "must be a file: reference (the WinRM client reads the PEM from a file)",
                'Write client_certificate = "file:/etc/entra-backup/bridge-client.pem" (PEM: '
                "certificate and private key, readable only by the agent).",
            )
        return secret_ref(value) if value else value

    @field_validator("organization")
    @classmethod
    def _organization(cls, value: str) -> str:
        if not DOMAIN.match(value) or not value.lower().endswith(".onmicrosoft.com"):
            raise invalid(
                f"must be the tenant's initial domain ending in .onmicrosoft.com (got '{value}')",
                'App-only Exchange sign-in needs it, e.g. organization = "contoso.onmicrosoft.com".',
            )
        return value

    @field_validator("certificate_thumbprint")
    @classmethod
    def _thumbprint(cls, value: str) -> str:
        if value and not re.match(r"^[0-9A-Fa-f]{40}$", value):
            raise invalid(
                "is not a 40-hex-digit certificate thumbprint",
                "Copy the thumbprint of the app's certificate in the bridge host's store "
                "(Cert:\\LocalMachine\\My), without spaces.",
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExchangeConfig:
        if self.bridge_url.startswith("http://") and not self.allow_http:
            raise invalid(
                "uses plain http://, which sends the bridge credentials and tenant data "
                "unencrypted",
                "Use the bridge host's HTTPS listener (port 5986), or for a lab only set "
                "allow_http = true.",
            )
        needs_password = self.auth in ("basic", "ntlm", "negotiate", "credssp")
        if needs_password and not (self.username and self.password):
            raise invalid(
                f'auth = "{self.auth}" needs username and password',
                'Add username = "BRIDGE\\\\svc-backup" and password = "env:NAME" (or file:/keyring:).',
            )
        host = urlsplit(self.bridge_url).hostname or ""
        if self.auth == "certificate" and self.bridge_url.startswith("http://"):
            raise invalid(
                'auth = "certificate" needs the HTTPS listener (the client certificate is '
                "presented in the TLS handshake)",
                "Use the bridge host's https:// URL (port 5986), or another auth method.",
            )
        if self.auth == "kerberos" and _is_ip_literal(host):
            raise invalid(
                f'auth = "kerberos" cannot reach a host by its IP address ({host}): Kerberos '
                "asks for a ticket to the host's service principal name",
                "Write bridge_url with the host's DNS name (e.g. \"https://bridge01.contoso.local"
                ':5986/wsman"), or use auth = "ntlm" or "certificate".',
            )
        if self.auth == "certificate" and not self.client_certificate:
            raise invalid(
                'auth = "certificate" needs client_certificate',
                'Add client_certificate = "file:/path/client.pem" (certificate + private key).',
            )
        if self.connect == "certificate_thumbprint" and not self.certificate_thumbprint:
            raise invalid(
                'connect = "certificate_thumbprint" needs certificate_thumbprint',
                "Add the thumbprint of the app's certificate installed on the bridge host, or "
                'choose connect = "certificate_file" or "service_account".',
            )
        if self.connect == "certificate_file" and not (
            self.certificate_file and self.certificate_password
        ):
            raise invalid(
                'connect = "certificate_file" needs certificate_file and certificate_password',
                'Add certificate_file = "C:\\\\EntraBackup\\\\app.pfx" (a path on the bridge '
                'host) and certificate_password = "env:NAME".',
            )
        return self
