"""The agent's TOML config → validated pydantic models.

Every problem becomes one ``ConfigError`` naming the file, the dotted key and what to write
instead. Secrets never appear in the config, only references to them (agent/secrets.py).

One module per job: fields.py (shared checks: GUIDs, URLs, secret references), model.py (agent
section, tenants, app, service account, scopes), exchange.py (the Exchange bridge section),
load.py (TOML → model, errors, path resolution), example.py (the example config). Import from
here: ``agent.config`` is the config's public face.
"""

from __future__ import annotations

from agent.config.example import EXAMPLE, render_example_config
from agent.config.exchange import BRIDGE_AUTHS, EXCHANGE_CONNECTS, ExchangeConfig
from agent.config.fields import DOMAIN, GUID, LOG_LEVELS, NAME, SECRET_FIX
from agent.config.load import load_config
from agent.config.model import (
    AgentConfig,
    AgentSection,
    AppConfig,
    ScopeConfig,
    ServiceAccountConfig,
    TenantConfig,
    default_data_dir,
)

__all__ = [
    "BRIDGE_AUTHS",
    "DOMAIN",
    "EXAMPLE",
    "EXCHANGE_CONNECTS",
    "GUID",
    "LOG_LEVELS",
    "NAME",
    "SECRET_FIX",
    "AgentConfig",
    "AgentSection",
    "AppConfig",
    "ExchangeConfig",
    "ScopeConfig",
    "ServiceAccountConfig",
    "TenantConfig",
    "default_data_dir",
    "load_config",
    "render_example_config",
]
