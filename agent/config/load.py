"""Loading: TOML → the model, every problem as one ``ConfigError`` naming the file, the dotted
key and what to write instead; relative paths resolved against the config's folder."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from agent.config.exchange import ExchangeConfig
from agent.config.fields import NAME
from agent.config.model import (
    AgentConfig,
    AgentSection,
    AppConfig,
    ScopeConfig,
    ServiceAccountConfig,
    TenantConfig,
)
from agent.errors import ConfigError

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
