"""The agent's TOML config → validated pydantic models.

Every problem becomes one ``ConfigError`` naming the file, the dotted key and what to write
instead. Secrets never appear in the config, only references to them (agent/secrets.py).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from agent.errors import ConfigError
from agent.secrets import is_secret_ref

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SECRET_FIX = (
    "Put the secret in an environment variable, a file readable only by the agent, or the OS "
    'keyring, and write its reference: "env:NAME", "file:/path" or '
    '"keyring:service/username".'
)


def _problem(problem: str, fix: str) -> PydanticCustomError:
    return PydanticCustomError("config", "{problem}", {"problem": problem, "fix": fix})


def _secret_ref(value: str) -> str:
    if not is_secret_ref(value):
        # Do not echo the value: it is probably the secret itself.
        raise _problem("holds a literal value, not a secret reference", SECRET_FIX)
    return value


def _https_url(value: str) -> str:
    if not re.match(r"^https://[^/\s]+(/[^\s]*)?$", value):
        raise _problem(
            f"must be an https:// URL (got '{value}')",
            'Write the service\'s https address, e.g. "https://login.microsoftonline.com".',
        )
    return value.rstrip("/")


def _guid(value: str) -> str:
    if not GUID.match(value):
        raise _problem(
            f"must be a GUID (got '{value}')",
            "Copy the Application (client) ID from the app registration's overview page.",
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


def default_data_dir() -> str:
    if os.name == "nt":
        return str(Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "entra-backup")
    return "/var/lib/entra-backup"


class AgentSection(_Model):
    data_dir: str = Field(default_factory=default_data_dir)
    database_url: str = ""
    repository: str = ""
    repository_key: str = ""
    log_file: str = ""
    log_level: str = "INFO"
    max_concurrent_jobs: int = Field(default=2, ge=1, le=64)

    @field_validator("repository_key")
    @classmethod
    def _key_ref(cls, value: str) -> str:
        return _secret_ref(value) if value else value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise _problem(f"'{value}' is not a log level", f"Use one of {', '.join(LOG_LEVELS)}.")
        return value.upper()

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        if value and not re.match(r"^(sqlite|postgresql(\+psycopg)?)://", value):
            raise _problem(
                "is not a sqlite:/// or postgresql+psycopg:// URL",
                "Leave it empty for the built-in SQLite database, or write "
                '"postgresql+psycopg://user@host/dbname".',
            )
        return value


class AppConfig(_Model):
    client_id: str
    client_secret: str | None = None
    certificate: str | None = None

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        return _guid(value)

    @field_validator("client_secret", "certificate")
    @classmethod
    def _refs(cls, value: str | None) -> str | None:
        return None if value is None else _secret_ref(value)

    @model_validator(mode="after")
    def _one_credential(self) -> AppConfig:
        if bool(self.client_secret) == bool(self.certificate):
            both = bool(self.client_secret)
            raise _problem(
                "has both client_secret and certificate"
                if both
                else "has neither client_secret nor certificate",
                'Keep exactly one: client_secret = "env:NAME" or certificate = '
                '"file:/path/app.pem" (PEM with private key and certificate).',
            )
        return self


class ServiceAccountConfig(_Model):
    username: str
    password: str
    client_id: str

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        return _guid(value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return _secret_ref(value)

    @field_validator("username")
    @classmethod
    def _upn(cls, value: str) -> str:
        if "@" not in value:
            raise _problem(
                f"'{value}' is not a user principal name",
                'Write the account\'s sign-in name, e.g. "svc-backup@contoso.onmicrosoft.com".',
            )
        return value


class ScopeConfig(_Model):
    name: str
    kinds: list[str] = Field(min_length=1)
    schedule: str
    full_every_days: int = Field(default=7, ge=1, le=366)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise _problem(
                f"'{value}' is not a valid scope name",
                "Use letters, digits, '-', '_' or '.', e.g. \"entra-nightly\".",
            )
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        fix = (
            "Write a 5-field cron expression: minute hour day-of-month month day-of-week, "
            'e.g. "0 2 * * *" for 02:00 every day.'
        )
        if len(value.split()) != 5:
            raise _problem(f"'{value}' does not have 5 cron fields", fix)
        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise _problem(f"'{value}' is not a valid cron expression ({exc})", fix) from None
        return value


BRIDGE_AUTHS = ("basic", "ntlm", "negotiate", "kerberos", "certificate", "credssp")
EXCHANGE_CONNECTS = ("certificate_thumbprint", "certificate_file", "service_account")


class ExchangeConfig(_Model):
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
            raise _problem(
                f"must be an https:// URL of the bridge host's WinRM listener (got '{value}')",
                'Write e.g. "https://bridge01.contoso.local:5986/wsman".',
            )
        return value.rstrip("/")

    @field_validator("password", "certificate_password")
    @classmethod
    def _refs(cls, value: str) -> str:
        return _secret_ref(value) if value else value

    @field_validator("client_certificate")
    @classmethod
    def _client_cert(cls, value: str) -> str:
        if value and not value.startswith("file:"):
            raise _problem(
                "must be a file: reference (the WinRM client reads the PEM from a file)",
                'Write client_certificate = "file:/etc/entra-backup/bridge-client.pem" (PEM: '
                "certificate and private key, readable only by the agent).",
            )
        return _secret_ref(value) if value else value

    @field_validator("organization")
    @classmethod
    def _organization(cls, value: str) -> str:
        if not DOMAIN.match(value) or not value.lower().endswith(".onmicrosoft.com"):
            raise _problem(
                f"must be the tenant's initial domain ending in .onmicrosoft.com (got '{value}')",
                'App-only Exchange sign-in needs it, e.g. organization = "contoso.onmicrosoft.com".',
            )
        return value

    @field_validator("certificate_thumbprint")
    @classmethod
    def _thumbprint(cls, value: str) -> str:
        if value and not re.match(r"^[0-9A-Fa-f]{40}$", value):
            raise _problem(
                "is not a 40-hex-digit certificate thumbprint",
                "Copy the thumbprint of the app's certificate in the bridge host's store "
                "(Cert:\\LocalMachine\\My), without spaces.",
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExchangeConfig:
        if self.bridge_url.startswith("http://") and not self.allow_http:
            raise _problem(
                "uses plain http://, which sends the bridge credentials and tenant data "
                "unencrypted",
                "Use the bridge host's HTTPS listener (port 5986), or for a lab only set "
                "allow_http = true.",
            )
        needs_password = self.auth in ("basic", "ntlm", "negotiate", "credssp")
        if needs_password and not (self.username and self.password):
            raise _problem(
                f'auth = "{self.auth}" needs username and password',
                'Add username = "BRIDGE\\\\svc-backup" and password = "env:NAME" (or file:/keyring:).',
            )
        if self.auth == "certificate" and not self.client_certificate:
            raise _problem(
                'auth = "certificate" needs client_certificate',
                'Add client_certificate = "file:/path/client.pem" (certificate + private key).',
            )
        if self.connect == "certificate_thumbprint" and not self.certificate_thumbprint:
            raise _problem(
                'connect = "certificate_thumbprint" needs certificate_thumbprint',
                "Add the thumbprint of the app's certificate installed on the bridge host, or "
                'choose connect = "certificate_file" or "service_account".',
            )
        if self.connect == "certificate_file" and not (
            self.certificate_file and self.certificate_password
        ):
            raise _problem(
                'connect = "certificate_file" needs certificate_file and certificate_password',
                'Add certificate_file = "C:\\\\EntraBackup\\\\app.pfx" (a path on the bridge '
                'host) and certificate_password = "env:NAME".',
            )
        return self


class TenantConfig(_Model):
    tenant_id: str
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com"
    # The Entra admin portal's own API, for settings Graph lacks (facts file §9).
    portal_url: str = "https://main.iam.ad.ext.azure.com"
    ca_bundle: str = ""
    tenant_size: Literal["auto", "S", "M", "L"] = "auto"
    # Opt-in: BitLocker recovery keys (secrets that unlock devices' disks; kind
    # bitlockerRecoveryKey). Needs BitLockerKey.Read.All; every key read is audited by Entra.
    backup_bitlocker_keys: bool = False
    app: AppConfig
    service_account: ServiceAccountConfig | None = None
    exchange: ExchangeConfig | None = None
    scopes: list[ScopeConfig] = Field(default_factory=list)

    _name: str = PrivateAttr(default="")

    @property
    def name(self) -> str:
        """The tenant's table name in the config ([tenants.<name>])."""
        return self._name

    @field_validator("tenant_id")
    @classmethod
    def _tenant_id(cls, value: str) -> str:
        if not (GUID.match(value) or DOMAIN.match(value)):
            raise _problem(
                f"'{value}' is neither a GUID nor a domain",
                "Write the Directory (tenant) ID or the initial domain, e.g. "
                '"contoso.onmicrosoft.com".',
            )
        return value

    @field_validator("authority_host", "graph_url", "portal_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return _https_url(value)

    @field_validator("scopes")
    @classmethod
    def _unique(cls, scopes: list[ScopeConfig]) -> list[ScopeConfig]:
        seen: set[str] = set()
        for scope in scopes:
            if scope.name in seen:
                raise _problem(
                    f"has two scopes named '{scope.name}'", "Give every scope its own name."
                )
            seen.add(scope.name)
        return scopes


class AgentConfig(_Model):
    agent: AgentSection = Field(default_factory=AgentSection)
    tenants: dict[str, TenantConfig] = Field(default_factory=dict)

    _path: Path = PrivateAttr(default=Path("agent.toml"))

    @property
    def path(self) -> Path:
        return self._path

    def tenant(self, name: str) -> TenantConfig:
        try:
            return self.tenants[name]
        except KeyError:
            known = ", ".join(sorted(self.tenants)) or "(none)"
            close = difflib.get_close_matches(name, list(self.tenants), n=1)
            hint = f"Did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"{self._path}: there is no tenant named '{name}'. Configured tenants: {known}.",
                f"{hint}Use one of the configured names, or add a [tenants.{name}] table.",
            ) from None


# --- loading -------------------------------------------------------------------------------

_SECTIONS: dict[str, type[BaseModel]] = {
    "": AgentConfig,
    "agent": AgentSection,
    "tenant": TenantConfig,
    "app": AppConfig,
    "service_account": ServiceAccountConfig,
    "exchange": ExchangeConfig,
    "scope": ScopeConfig,
}
_SECRET_KEYS = {
    "client_secret",
    "certificate",
    "password",
    "repository_key",
    "certificate_password",
    "client_certificate",
}


def _section_of(loc: tuple[str | int, ...]) -> type[BaseModel]:
    """The model that owns the key at ``loc`` (the last element)."""
    parent = loc[:-1]
    if not parent:
        return AgentConfig
    if parent == ("agent",):
        return AgentSection
    if len(parent) == 2 and parent[0] == "tenants":
        return TenantConfig
    if len(parent) == 3 and parent[0] == "tenants":
        return _SECTIONS.get(str(parent[2]), TenantConfig)
    if len(parent) == 4 and parent[2] == "scopes":
        return ScopeConfig
    return AgentConfig


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _table(loc: tuple[str | int, ...]) -> str:
    parts = [p for p in loc if not isinstance(p, int)]
    if loc and isinstance(loc[-1], int):
        return "[[" + ".".join(parts) + "]]"
    if any(isinstance(p, int) for p in loc):
        return "[[" + ".".join(parts) + "]]"
    return "[" + ".".join(parts) + "]" if parts else "the top level"


def _translate(path: Path, exc: ValidationError) -> ConfigError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc: tuple[str | int, ...] = tuple(first["loc"])
    # A model-level validator reports at the model's own location.
    key = _dotted(loc) or "(top level)"
    more = f" ({len(errors) - 1} more problem(s) after this one)" if len(errors) > 1 else ""
    kind = first["type"]
    ctx = first.get("ctx") or {}
    if kind == "extra_forbidden":
        name = str(loc[-1])
        valid = list(_section_of(loc).model_fields)
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        where = _table(loc[:-1])
        fix = (f"Did you mean '{close[0]}'? " if close else "") + (
            f"Valid keys in {where}: {', '.join(valid)}."
        )
        return ConfigError(f"{path}: unknown key '{key}'{more}.", fix)
    if kind == "missing":
        where = _table(loc[:-1])
        return ConfigError(
            f"{path}: required key '{key}' is missing{more}.",
            f"Add {loc[-1]} = … under {where} (see config/agent.example.toml).",
        )
    if kind == "config":
        return ConfigError(f"{path}: '{key}' {ctx.get('problem')}{more}.", str(ctx.get("fix", "")))
    secret = bool(loc) and str(loc[-1]) in _SECRET_KEYS
    got = "" if secret or isinstance(first.get("input"), dict) else f" (got {first.get('input')!r})"
    return ConfigError(
        f"{path}: '{key}' is invalid: {first['msg']}{got}{more}.",
        "Correct the value (see config/agent.example.toml for the expected form).",
    )


def _resolve(base: Path, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _resolve_ref(base: Path, ref: str) -> str:
    if ref.startswith("file:"):
        return "file:" + _resolve(base, ref[5:])
    return ref


def _finish(cfg: AgentConfig, path: Path, known_kinds: set[str] | None) -> None:
    """Fill defaults that depend on other values, resolve relative paths, check kinds."""
    base = path.parent.resolve()
    a = cfg.agent
    a.data_dir = _resolve(base, a.data_dir)
    data = Path(a.data_dir)
    a.repository = _resolve(base, a.repository) if a.repository else str(data / "repository")
    a.log_file = _resolve(base, a.log_file) if a.log_file else str(data / "logs" / "agent.jsonl")
    a.database_url = a.database_url or f"sqlite:///{(data / 'agent.db').as_posix()}"
    a.repository_key = _resolve_ref(
        base, a.repository_key or f"file:{data / 'keys' / 'repository.key'}"
    )
    for name, tenant in cfg.tenants.items():
        if not NAME.match(name):
            raise ConfigError(
                f"{path}: tenant name '{name}' in [tenants.{name}] is not valid.",
                "Use letters, digits, '-', '_' or '.' (e.g. [tenants.contoso]).",
            )
        tenant._name = name
        if tenant.ca_bundle:
            tenant.ca_bundle = _resolve(base, tenant.ca_bundle)
            if not Path(tenant.ca_bundle).is_file():
                raise ConfigError(
                    f"{path}: 'tenants.{name}.ca_bundle' names {tenant.ca_bundle}, which does "
                    "not exist.",
                    "Point it at a PEM file of the CA certificate(s), or leave it empty to use "
                    "the system trust store.",
                )
        tenant.app.client_secret = tenant.app.client_secret and _resolve_ref(
            base, tenant.app.client_secret
        )
        tenant.app.certificate = tenant.app.certificate and _resolve_ref(
            base, tenant.app.certificate
        )
        if tenant.service_account:
            tenant.service_account.password = _resolve_ref(base, tenant.service_account.password)
        if tenant.exchange:
            _finish_exchange(path, base, name, tenant)
        if known_kinds is None:
            continue
        for i, scope in enumerate(tenant.scopes):
            for kind in scope.kinds:
                if kind not in known_kinds:
                    close = difflib.get_close_matches(kind, sorted(known_kinds), n=1)
                    raise ConfigError(
                        f"{path}: 'tenants.{name}.scopes[{i}].kinds' lists unknown kind "
                        f"'{kind}' (scope '{scope.name}').",
                        (f"Did you mean '{close[0]}'? " if close else "")
                        + "Run 'entra-backup kinds' for the list; areas (entra, exchange, "
                        "defender) and '*' are allowed too.",
                    )


def _finish_exchange(path: Path, base: Path, name: str, tenant: TenantConfig) -> None:
    ex = tenant.exchange
    assert ex is not None
    where = f"tenants.{name}.exchange"
    ex.password = _resolve_ref(base, ex.password) if ex.password else ""
    ex.certificate_password = (
        _resolve_ref(base, ex.certificate_password) if ex.certificate_password else ""
    )
    ex.client_certificate = (
        _resolve_ref(base, ex.client_certificate) if ex.client_certificate else ""
    )
    if ex.ca_bundle:
        ex.ca_bundle = _resolve(base, ex.ca_bundle)
        if not Path(ex.ca_bundle).is_file():
            raise ConfigError(
                f"{path}: '{where}.ca_bundle' names {ex.ca_bundle}, which does not exist.",
                "Point it at a PEM file of the CA that issued the bridge host's WinRM "
                "certificate, or leave it empty to use the tenant's ca_bundle.",
            )
    else:
        ex.ca_bundle = tenant.ca_bundle
    if ex.connect == "service_account" and tenant.service_account is None:
        raise ConfigError(
            f"{path}: '{where}.connect' is \"service_account\" but [tenants.{name}] has no "
            "service_account.",
            f"Add [tenants.{name}.service_account], or connect with the app's certificate "
            '(connect = "certificate_thumbprint").',
        )
    from agent.kinds.exchange import SETTINGS_SELECTORS

    for selector in ex.settings:
        if selector not in SETTINGS_SELECTORS:
            close = difflib.get_close_matches(selector, sorted(SETTINGS_SELECTORS), n=1)
            raise ConfigError(
                f"{path}: '{where}.settings' lists unknown setting family '{selector}'.",
                (f"Did you mean '{close[0]}'? " if close else "")
                + "Use settings kind names from 'entra-backup kinds', \"exchange\", "
                '"defender" or "*".',
            )


def load_config(path: Path, known_kinds: set[str] | None = None) -> AgentConfig:
    """Read and validate the config at ``path``; raise one ``ConfigError`` on any problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {path} does not exist.",
            f"Run 'entra-backup init --config {path}' to create one, or pass --config.",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"Cannot read config file {path}: {exc.strerror}.",
            "Give the agent's account read access to it.",
        ) from None
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text.", "Save the file as UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: TOML syntax error: {exc}.",
            "Fix that line: strings need double quotes, tables look like [tenants.name], "
            "Windows paths need '\\\\' or single quotes.",
        ) from None
    try:
        cfg = AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise _translate(path, exc) from None
    cfg._path = path
    _finish(cfg, path, known_kinds)
    return cfg


# --- the example config ----------------------------------------------------------------------

EXAMPLE = """\
# entra-backup agent configuration.
# Relative paths are resolved against this file's folder. Secrets are never written here:
# secret settings hold a reference — "env:NAME", "file:/path" (owner-only file) or
# "keyring:service/username" (the OS keyring).

[agent]
# Where the agent keeps its database, repository and logs.
data_dir = "/var/lib/entra-backup"
# Empty: SQLite in <data_dir>/agent.db. Or "postgresql+psycopg://user@host/dbname".
database_url = ""
# Empty: <data_dir>/repository (the encrypted, content-addressed backup store).
repository = ""
# The repository's encryption key. Without it no backup can be read: keep a copy offline.
repository_key = "file:/etc/entra-backup/repository.key"
# Empty: <data_dir>/logs/agent.jsonl (JSON lines).
log_file = ""
# DEBUG, INFO, WARNING, ERROR or CRITICAL.
log_level = "INFO"
# Backup jobs that may run at the same time (across tenants).
max_concurrent_jobs = 2

# One table per Microsoft 365 tenant; the name (here "contoso") is used on the command line.
[tenants.contoso]
# The Directory (tenant) ID (a GUID) or the initial domain.
tenant_id = "contoso.onmicrosoft.com"
authority_host = "https://login.microsoftonline.com"
graph_url = "https://graph.microsoft.com"
# The Entra admin portal's API: Groups general settings that Graph lacks (needs the service
# account below; without one that setting is skipped, everything else is backed up).
portal_url = "https://main.iam.ad.ext.azure.com"
# PEM file of the CA(s) to trust for this tenant's endpoints instead of the system trust store
# (e.g. a TLS-inspecting proxy's CA). Empty: system trust. Verification is never turned off.
ca_bundle = ""
# Graph throttling budget: auto (measured), S (<50 users), M (50-500), L (>500).
tenant_size = "auto"
# Opt-in: back up the BitLocker recovery keys of the tenant's devices (they unlock disks,
# and Entra audits every key read). Needs BitLockerKey.Read.All; stored encrypted like
# everything else in the repository.
backup_bitlocker_keys = false

# The app registration the agent signs in as (application permissions, admin-consented).
[tenants.contoso.app]
client_id = "00000000-0000-0000-0000-000000000000"
# Exactly one of client_secret / certificate.
client_secret = "env:CONTOSO_CLIENT_SECRET"
# certificate = "file:/etc/entra-backup/contoso-app.pem"  # PEM: private key + certificate

# Optional: a service account for settings only reachable with delegated admin rights.
# It must not require MFA; its app needs "Allow public client flows".
# [tenants.contoso.service_account]
# username = "svc-backup@contoso.onmicrosoft.com"
# password = "keyring:entra-backup/contoso-svc"
# client_id = "00000000-0000-0000-0000-000000000000"

# Optional: Exchange Online and Defender settings, distribution lists and mail-enabled
# security groups, read through a bridge host (Windows or PowerShell 7) that has the
# ExchangeOnlineManagement module, over WinRM/PSRP. The app above also needs Office 365
# Exchange Online > Exchange.ManageAsApp and the Exchange Administrator role (or a custom
# role group: see 'entra-backup permissions --scope exchange').
# [tenants.contoso.exchange]
# The bridge host's WinRM HTTPS listener.
# bridge_url = "https://bridge01.contoso.local:5986/wsman"
# WinRM authentication: basic, ntlm, negotiate, kerberos, certificate or credssp.
# auth = "negotiate"
# username = "CONTOSO\\\\svc-exo-bridge"
# password = "keyring:entra-backup/contoso-bridge"
# With auth = "certificate" instead of a password: PEM with certificate and private key.
# client_certificate = "file:/etc/entra-backup/bridge-client.pem"
# CA of the bridge host's certificate; empty = the tenant's ca_bundle / system trust.
# ca_bundle = ""
# Plain http:// is refused unless this is true (lab only: everything crosses unencrypted).
# allow_http = false
# The tenant's initial domain (app-only Exchange sign-in needs it).
# organization = "contoso.onmicrosoft.com"
# How the bridge host signs in to Exchange Online as the app: certificate_thumbprint (the
# app's certificate in the host's store), certificate_file (a .pfx on the host) or
# service_account (the [service_account] above; must not require MFA).
# connect = "certificate_thumbprint"
# certificate_thumbprint = "0000000000000000000000000000000000000000"
# certificate_file = 'C:\\EntraBackup\\contoso-app.pfx'
# certificate_password = "env:CONTOSO_PFX_PASSWORD"
# Which settings kinds to read: kind names, "exchange", "defender" or "*".
# settings = ["*"]
# WinRM operation timeout, the longest one cmdlet call may take, and connect timeout.
# operation_timeout_s = 20
# call_timeout_s = 900
# connect_timeout_s = 30
# Distribution groups (with their members) per bridge call: the agent holds one page.
# group_page_size = 100

# Backup scopes: what to back up and when. Repeat the table for more scopes.
[[tenants.contoso.scopes]]
name = "entra-nightly"
# Kind names, areas ("entra", "exchange", "defender") or "*"; see 'entra-backup kinds'.
kinds = ["entra"]
# 5-field cron (minute hour day-of-month month day-of-week), agent's local time.
schedule = "0 2 * * *"
# Force a full (non-incremental) backup at least this often.
full_every_days = 7
"""


def render_example_config() -> str:
    """The fully commented example config (config/agent.example.toml is this text)."""
    return EXAMPLE
