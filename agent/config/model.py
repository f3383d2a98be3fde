"""The config model: the agent section, tenants with their app, service account and scopes."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from agent.config.exchange import ExchangeConfig
from agent.config.fields import (
    DOMAIN,
    GUID,
    LOG_LEVELS,
    NAME,
    Model,
    guid,
    https_url,
    invalid,
    secret_ref,
)
from agent.errors import ConfigError


def default_data_dir() -> str:
    if os.name == "nt":
        return str(Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "entra-backup")
    return "/var/lib/entra-backup"


class AgentSection(Model):
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
        return secret_ref(value) if value else value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise invalid(f"'{value}' is not a log level", f"Use one of {', '.join(LOG_LEVELS)}.")
        return value.upper()

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        if value and not re.match(r"^(sqlite|postgresql(\+psycopg)?)://", value):
            raise invalid(
                "is not a sqlite:/// or postgresql+psycopg:// URL",
                "Leave it empty for the built-in SQLite database, or write "
                '"postgresql+psycopg://user@host/dbname".',
            )
        return value


class AppConfig(Model):
    client_id: str
    client_secret: str | None = None
    certificate: str | None = None

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        return guid(value)

    @field_validator("client_secret", "certificate")
    @classmethod
    def _refs(cls, value: str | None) -> str | None:
        return None if value is None else secret_ref(value)

    @model_validator(mode="after")
    def _one_credential(self) -> AppConfig:
        if bool(self.client_secret) == bool(self.certificate):
            both = bool(self.client_secret)
            raise invalid(
                "has both client_secret and certificate"
                if both
                else "has neither client_secret nor certificate",
                'Keep exactly one: client_secret = "env:NAME" or certificate = '
                '"file:/path/app.pem" (PEM with private key and certificate).',
            )
        return self


class ServiceAccountConfig(Model):
    username: str
    password: str
    client_id: str

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        return guid(value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return secret_ref(value)

    @field_validator("username")
    @classmethod
    def _upn(cls, value: str) -> str:
        if "@" not in value:
            raise invalid(
                f"'{value}' is not a user principal name",
                'Write the account\'s sign-in name, e.g. "svc-backup@contoso.onmicrosoft.com".',
            )
        return value


class ScopeConfig(Model):
    name: str
    kinds: list[str] = Field(min_length=1)
    schedule: str
    full_every_days: int = Field(default=7, ge=1, le=366)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise invalid(
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
            raise invalid(f"'{value}' does not have 5 cron fields", fix)
        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise invalid(f"'{value}' is not a valid cron expression ({exc})", fix) from None
        return value


class TenantConfig(Model):
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
            raise invalid(
                f"'{value}' is neither a GUID nor a domain",
                "Write the Directory (tenant) ID or the initial domain, e.g. "
                '"contoso.onmicrosoft.com".',
            )
        return value

    @field_validator("authority_host", "graph_url", "portal_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return https_url(value)

    @field_validator("scopes")
    @classmethod
    def _unique(cls, scopes: list[ScopeConfig]) -> list[ScopeConfig]:
        seen: set[str] = set()
        for scope in scopes:
            if scope.name in seen:
                raise invalid(
                    f"has two scopes named '{scope.name}'", "Give every scope its own name."
                )
            seen.add(scope.name)
        return scopes


class AgentConfig(Model):
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
