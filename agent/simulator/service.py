"""The simulator as everyone uses it: tenants, login, Graph, one HTTPS port.

``Simulator`` composes the pieces for tests, the demo and benchmarks; ``serve`` runs it for
``entra-backup simulator serve`` and writes what an operator needs (CA, tenants.json with
credential file paths — never secret values on the console).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import signal
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from agent.simulator import ca
from agent.simulator.exchange import BridgeHost, ExchangeOrg, build_org, certificate_thumbprint
from agent.simulator.exchange import persist as exchange_persist
from agent.simulator.graph import Directory, Faults, GraphApi, generate, persist, register_routes
from agent.simulator.graph.activity import drop_premium
from agent.simulator.httpserver import HttpsServer, RequestLog, Router
from agent.simulator.login import register_login_routes
from agent.simulator.portal import register_portal_routes, settings_of
from agent.simulator.tokens import TokenIssuer
from agent.simulator.winrm import WinRMAuth, register_winrm_routes
from agent.simulator.world import (
    ROLE_TEMPLATE_IDS,
    AppRegistration,
    ClientSecret,
    ServiceAccount,
    SimTenant,
    World,
)

READ_PERMISSIONS = [
    "User.Read.All",
    "Group.Read.All",
    "GroupMember.Read.All",
    "Directory.Read.All",
    "AdministrativeUnit.Read.All",
    "Application.Read.All",
    "Policy.Read.All",
    "Policy.Read.PermissionGrant",
    "RoleManagement.Read.Directory",
    "Organization.Read.All",
    "Domain.Read.All",
    "Device.Read.All",
]
_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
BRIDGE_USER = "svc-entra-backup"  # the bridge host's local account for WinRM
BRIDGE_CERT_UPN = f"{BRIDGE_USER}@localhost"  # its client certificate's UPN (cert mapping)
_MAX_DEPTH = 7  # path segments under /v1.0 routed to the Graph pipeline


@dataclass
class TenantSpec:
    name: str = "contoso"
    seed: int = 1
    users: int = 2000
    groups: int = 300
    tenant_id: str | None = None  # None: a stable GUID from name and seed
    domain: str | None = None  # None: {name}.onmicrosoft.com
    graph_permissions: list[str] = field(default_factory=lambda: list(READ_PERMISSIONS))
    # Directory roles of the service app by name (world.ROLE_TEMPLATE_IDS), e.g. "Global
    # Administrator", which restoring deleted users and groups needs (facts file §3).
    directory_roles: list[str] = field(default_factory=list)
    # None: proportional to users — applications users // 20 (each with its service
    # principal), devices users // 2, administrative units max(2, users // 500).
    applications: int | None = None
    devices: int | None = None
    administrative_units: int | None = None
    # A service account profile (a user signing in with ROPC through a public client app) for
    # the admin portal API; its password is written to an owner-only file, never printed.
    service_account: bool = False
    service_account_mfa: bool = False  # MFA enforced: sign-in fails with AADSTS50076
    service_account_roles: list[str] = field(default_factory=list)  # e.g. "Global Administrator"
    # Exchange (agent/simulator/exchange). None: the mail-enabled groups the Graph generator
    # made among ``groups`` (about 10% distribution lists, 10% mail-enabled security groups);
    # a number: groups are added until there are at least that many, with ``members_per_dl``
    # members each (None: a realistic spread).
    distribution_groups: int | None = None
    mail_security_groups: int | None = None
    members_per_dl: int | None = None
    defender_licensed: bool = True  # Defender for Office 365 (Safe Links/Attachments, …)
    # False: no Entra ID P1/P2 subscription (sign-in logs refused, 7-day log retention).
    entra_premium: bool = True


@dataclass
class ServiceAccountHandle:
    username: str
    client_id: str  # the public client app it signs in through
    password_path: Path  # owner-only file holding the password
    account: ServiceAccount


@dataclass
class TenantHandle:
    name: str
    tenant_id: str
    domain: str
    client_id: str
    client_secret: str  # plain value: tests and the demo hand it over in an env var or file
    certificate_path: Path  # PEM: private key + self-signed certificate, mode 0600
    app: AppRegistration
    directory: Directory
    exchange: ExchangeOrg  # the tenant's simulated Exchange Online (behind the bridge host)
    service_account: ServiceAccountHandle | None = None


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    path.chmod(0o600)


def _self_signed(common_name: str) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM) for an app's certificate credential."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ca.key_pem(key), ca.pem(ca.certificate(common_name, key, days=730))


class Simulator:
    """Login + Graph for any number of tenants on one loopback HTTPS port."""

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        request_log: Path | None = None,
        http_listener: bool = False,
    ) -> None:
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._temp = tempfile.TemporaryDirectory(prefix="entra-sim-")
            self.files_dir = Path(self._temp.name)
        else:
            self.files_dir = Path(state_dir)
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.files_dir.mkdir(parents=True, exist_ok=True)
        tls = ca.TlsMaterial.load(self.files_dir / "tls") if self.state_dir else None
        if tls is None:
            tls = ca.generate()
            tls.write(self.files_dir / "tls")
        self.ca_path = self.files_dir / "ca.pem"
        self.ca_path.write_bytes(tls.ca_pem)
        self.world = World()
        self.issuer = TokenIssuer()
        self.faults = Faults()
        self.graph = GraphApi(self.world, self.issuer, self.faults)
        register_routes(self.graph)
        self.router = Router()
        register_login_routes(self.router, self.world, self.issuer)
        register_portal_routes(self.router, self.world, self.issuer)
        for depth in range(0, _MAX_DEPTH + 1):
            pattern = "/v1.0" + "".join(f"/{{s{i}}}" for i in range(depth))
            for method in _METHODS:
                self.router.add(method, pattern, self.graph.serve)
        # The bridge host: WinRM/PSRP at /wsman, one local user for every tenant (the tenant is
        # chosen by Connect-EbExchange, as on a real bridge host).
        self.bridge = BridgeHost(self.world)
        self.bridge_password_path = self.files_dir / "bridge-password"
        if not self.bridge_password_path.exists():
            _write_private(self.bridge_password_path, secrets.token_urlsafe(24).encode())
        # WinRM client-certificate auth: a client CA the host trusts, and the bridge user's
        # certificate mapped to it (what New-Item WSMan:\localhost\ClientCertificate does).
        self.client_ca = ca.ClientAuthority.load_or_create(self.files_dir / "tls")
        self.bridge_client_cert_path = self.files_dir / "bridge-client.pem"
        if not self.bridge_client_cert_path.exists():
            _write_private(self.bridge_client_cert_path, self.client_ca.issue(BRIDGE_CERT_UPN))
        auth = WinRMAuth(
            {BRIDGE_USER: self.bridge_password_path.read_text().strip()},
            self.files_dir / "winrm-ntlm-users",
            server_cert_pem=tls.cert_pem,
            client_ca_thumbprint=self.client_ca.thumbprint,
        )
        auth.map_certificate(BRIDGE_CERT_UPN, BRIDGE_USER)
        self.winrm = register_winrm_routes(self.router, auth=auth, handler=self.bridge)
        self.log = RequestLog(request_log)
        self.server = HttpsServer(
            self.router, tls, host, port, self.log, client_ca_pem=self.client_ca.ca_pem
        )
        self.base_url = self.server.base_url
        # The bridge host's plain-HTTP listener (WinRM 5985), for lab setups only: /wsman alone.
        self.http_server: HttpsServer | None = None
        if http_listener:
            http_router = Router()
            http_router.add("POST", "/wsman", self.winrm)
            self.http_server = HttpsServer(http_router, None, host, 0, self.log)
        self.tenants: dict[str, TenantHandle] = {}
        self._started = False

    # -- tenants -------------------------------------------------------------------------

    def _tenant_dir(self, name: str) -> Path:
        return self.files_dir / "tenants" / name

    def add_tenant(self, spec: TenantSpec) -> TenantHandle:
        tenant_id = spec.tenant_id or str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"entra-backup-simulator/{spec.name}/{spec.seed}")
        )
        domain = spec.domain or f"{spec.name}.onmicrosoft.com"
        folder = self._tenant_dir(spec.name)
        saved = folder / "directory.json.gz"
        if self.state_dir is not None and saved.exists():
            directory = persist.load(saved)
            tenant_id, domain = directory.tenant_id, directory.domain
        else:
            directory = Directory(tenant_id, domain)
            generate(
                directory,
                spec.seed,
                spec.users,
                spec.groups,
                applications=spec.applications,
                devices=spec.devices,
                administrative_units=spec.administrative_units,
            )
            if not spec.entra_premium:
                drop_premium(directory)
        app, secret, cert_path = self._app(spec, folder, tenant_id)
        sim_tenant = self.world.add(
            SimTenant(
                tenant_id, domain, spec.name.title(), apps={app.client_id: app}, directory=directory
            )
        )
        with directory.lock:
            settings_of(directory, sim_tenant.display_name)
        exchange = build_org(
            sim_tenant,
            directory,
            spec.seed,
            distribution_groups=spec.distribution_groups,
            mail_security_groups=spec.mail_security_groups,
            members_per_dl=spec.members_per_dl,
            defender_licensed=spec.defender_licensed,
        )
        if self.state_dir is not None and (folder / "exchange.json.gz").exists():
            exchange_persist.load(exchange, folder / "exchange.json.gz")
        self.bridge.add_org(exchange)
        handle = TenantHandle(
            spec.name, tenant_id, domain, app.client_id, secret, cert_path, app, directory, exchange
        )
        if spec.service_account:
            handle.service_account = self._service_account(spec, folder, sim_tenant)
        self.tenants[spec.name] = handle
        return handle

    def _app(
        self, spec: TenantSpec, folder: Path, tenant_id: str
    ) -> tuple[AppRegistration, str, Path]:
        """The backup service app: a secret and a certificate, reused from the state dir."""
        secret_path, cert_path, meta_path = (
            folder / "client-secret",
            folder / "app-certificate.pem",
            folder / "app.json",
        )
        if meta_path.exists() and secret_path.exists() and cert_path.exists():
            meta = json.loads(meta_path.read_text())
            client_id, secret = meta["client_id"], secret_path.read_text().strip()
            pem = cert_path.read_bytes()
            cert_pem = pem[pem.index(b"-----BEGIN CERTIFICATE-----") :]
        else:
            client_id = str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"entra-backup-simulator/{tenant_id}/app")
            )
            secret = secrets.token_urlsafe(30)
            key_pem, cert_pem = _self_signed(f"entra-backup {spec.name}")
            _write_private(secret_path, secret.encode())
            _write_private(cert_path, key_pem + cert_pem)
            meta_path.write_text(json.dumps({"client_id": client_id}))
        app = AppRegistration(
            client_id=client_id,
            display_name="entra-backup",
            secrets=[ClientSecret.create(secret, dt.datetime.now(dt.UTC) + dt.timedelta(days=365))],
            certificates_pem=[cert_pem],
            graph_permissions=list(spec.graph_permissions),
            directory_roles=[ROLE_TEMPLATE_IDS[name] for name in spec.directory_roles],
        )
        return app, secret, cert_path

    def _service_account(
        self, spec: TenantSpec, folder: Path, tenant: SimTenant
    ) -> ServiceAccountHandle:
        """A user and the public client app it signs in through; the password is reused from
        the state dir and only ever written to an owner-only file."""
        password_path = folder / "service-account-password"
        if password_path.exists():
            password = password_path.read_text().strip()
        else:
            password = secrets.token_urlsafe(24)
            _write_private(password_path, password.encode())
        client_id = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"entra-backup-simulator/{tenant.tenant_id}/svc-app")
        )
        tenant.apps[client_id] = AppRegistration(
            client_id=client_id, display_name="entra-backup service account", public_client=True
        )
        username = f"svc-backup@{tenant.domain}"
        account = ServiceAccount(
            username=username,
            password_sha256=hashlib.sha256(password.encode()).hexdigest(),
            mfa_required=spec.service_account_mfa,
            directory_roles=[ROLE_TEMPLATE_IDS[r] for r in spec.service_account_roles],
            object_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant.tenant_id}/{username}")),
        )
        tenant.accounts[username.lower()] = account
        return ServiceAccountHandle(username, client_id, password_path, account)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Simulator:
        if not self._started:
            self.server.start()
            if self.http_server is not None:
                self.http_server.start()
            self._started = True
        return self

    def save(self) -> None:
        if self.state_dir is None:
            return
        for name, handle in self.tenants.items():
            persist.save(handle.directory, self._tenant_dir(name) / "directory.json.gz")
            exchange_persist.save(handle.exchange, self._tenant_dir(name) / "exchange.json.gz")

    def stop(self) -> None:
        if self._started:
            if self.http_server is not None:
                self.http_server.stop()
            self.server.stop()
            self._started = False
        else:
            self.log.close()
        self.save()
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None

    @property
    def errors(self) -> list[str]:
        """Exceptions inside handlers (each answered 500): tests assert there are none."""
        extra = self.http_server.errors if self.http_server is not None else []
        return self.server.errors + extra

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tenants_json(self) -> dict[str, Any]:
        return {
            "tenants": [
                {
                    "name": h.name,
                    "tenant_id": h.tenant_id,
                    "domain": h.domain,
                    "authority_host": self.base_url,
                    "graph_url": self.base_url,
                    "client_id": h.client_id,
                    "client_secret_file": str(self._tenant_dir(h.name) / "client-secret"),
                    "certificate_file": str(h.certificate_path),
                    "certificate_thumbprint": certificate_thumbprint(h.app.certificates_pem[0]),
                    "portal_url": self.base_url,
                    **(
                        {
                            "service_account": {
                                "username": h.service_account.username,
                                "client_id": h.service_account.client_id,
                                "password_file": str(h.service_account.password_path),
                            }
                        }
                        if h.service_account
                        else {}
                    ),
                }
                for h in self.tenants.values()
            ],
            "bridge": {
                "url": f"{self.base_url}/wsman",
                "username": BRIDGE_USER,
                "password_file": str(self.bridge_password_path),
                # auth = "certificate": mapped to the bridge account (PEM: cert + key).
                "client_certificate_file": str(self.bridge_client_cert_path),
            },
            "ca_file": str(self.ca_path),
        }


def serve(state_dir: Path, host: str, port: int, specs: list[TenantSpec]) -> None:
    """Run until SIGINT/SIGTERM; state, CA and tenants.json live in ``state_dir``."""
    sim = Simulator(state_dir, host=host, port=port)
    for spec in specs:
        sim.add_tenant(spec)
    sim.start()
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    # Before tenants.json: whoever reads it may stop the simulator at once.
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    (Path(state_dir) / "tenants.json").write_text(json.dumps(sim.tenants_json(), indent=2))
    print(
        f"Simulator listening on {sim.base_url}; CA {sim.ca_path}; tenants in {Path(state_dir) / 'tenants.json'}",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
