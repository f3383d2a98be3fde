"""Loading the agent config: good files load, every mistake is one clear ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config, render_example_config
from agent.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
KNOWN = {"users", "groups", "entra", "exchange", "defender", "*"}
APP_ID = "11111111-2222-3333-4444-555555555555"

GOOD = f"""
[agent]
data_dir = "data"
repository_key = "file:keys/repository.key"

[tenants.contoso]
tenant_id = "contoso.onmicrosoft.com"

[tenants.contoso.app]
client_id = "{APP_ID}"
client_secret = "env:CONTOSO_CLIENT_SECRET"

[[tenants.contoso.scopes]]
name = "nightly"
kinds = ["entra", "users"]
schedule = "0 2 * * *"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def error_for(tmp_path: Path, text: str, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), **kwargs)  # type: ignore[arg-type]
    assert "agent.toml" in info.value.message or "agent.toml" in info.value.fix
    return info.value


def test_example_file_is_the_rendered_example_and_loads() -> None:
    path = ROOT / "config" / "agent.example.toml"
    assert path.read_text() == render_example_config()
    cfg = load_config(path, known_kinds=KNOWN)
    tenant = cfg.tenant("contoso")
    assert tenant.app.client_secret == "env:CONTOSO_CLIENT_SECRET"
    assert tenant.scopes[0].kinds == ["entra"]
    assert cfg.agent.max_concurrent_jobs == 2


def test_good_config_fills_defaults_and_resolves_relative_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), known_kinds=KNOWN)
    data = (tmp_path / "data").resolve()
    assert cfg.agent.data_dir == str(data)
    assert cfg.agent.repository == str(data / "repository")
    assert cfg.agent.log_file == str(data / "logs" / "agent.jsonl")
    assert cfg.agent.database_url == f"sqlite:///{(data / 'agent.db').as_posix()}"
    assert cfg.agent.repository_key == f"file:{(tmp_path / 'keys' / 'repository.key').resolve()}"
    tenant = cfg.tenant("contoso")
    assert tenant.name == "contoso"
    assert tenant.authority_host == "https://login.microsoftonline.com"
    assert tenant.graph_url == "https://graph.microsoft.com"
    assert tenant.tenant_size == "auto"
    assert tenant.service_account is None
    assert tenant.scopes[0].full_every_days == 7


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in info.value.message
    assert "entra-backup init" in info.value.fix


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace('tenant_id = "contoso', "tenant_id = contoso"))
    assert "line 7" in err.message


def test_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    err = error_for(
        tmp_path, GOOD.replace('data_dir = "data"', 'data_dir = "data"\nlog_levle = "DEBUG"')
    )
    assert "agent.log_levle" in err.message
    assert "log_level" in err.fix


def test_unknown_key_in_a_tenant_table(tmp_path: Path) -> None:
    err = error_for(
        tmp_path, GOOD.replace("[tenants.contoso.app]", 'graph_uri = "x"\n[tenants.contoso.app]')
    )
    assert "tenants.contoso.graph_uri" in err.message
    assert "graph_url" in err.fix


def test_inline_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    literal = "Qx8~literal.secret.value.000"
    err = error_for(tmp_path, GOOD.replace("env:CONTOSO_CLIENT_SECRET", literal))
    assert "tenants.contoso.app.client_secret" in err.message
    assert "env:" in err.fix and "file:" in err.fix and "keyring:" in err.fix
    assert literal not in str(err)


def test_bad_cron(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("0 2 * * *", "0 25 * * *"))
    assert "tenants.contoso.scopes[0].schedule" in err.message
    assert "cron" in err.fix
    err = error_for(tmp_path, GOOD.replace("0 2 * * *", "every night"))
    assert "5 cron fields" in err.message


def test_unknown_kind_reported_through_the_hook(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace('"users"]', '"usres"]'), known_kinds=KNOWN)
    assert "usres" in err.message and "users" in err.fix
    load_config(write(tmp_path, GOOD.replace('"users"]', '"usres"]')))  # no hook: not checked


def test_unknown_tenant_lists_configured_ones(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError) as info:
        cfg.tenant("fabrikam")
    assert "fabrikam" in info.value.message and "contoso" in info.value.message


@pytest.mark.parametrize(
    ("replacement", "needle"),
    [
        ('client_secret = "env:X"\ncertificate = "file:/etc/app.pem"', "both"),
        ("", "neither"),
    ],
)
def test_exactly_one_app_credential(tmp_path: Path, replacement: str, needle: str) -> None:
    err = error_for(
        tmp_path, GOOD.replace('client_secret = "env:CONTOSO_CLIENT_SECRET"', replacement)
    )
    assert needle in err.message and "tenants.contoso.app" in err.message
    assert "exactly one" in err.fix


def test_missing_required_key(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace('tenant_id = "contoso.onmicrosoft.com"', ""))
    assert "tenants.contoso.tenant_id" in err.message and "missing" in err.message
    assert "[tenants.contoso]" in err.fix


def test_bad_values_name_their_key(tmp_path: Path) -> None:
    err = error_for(
        tmp_path, GOOD.replace('data_dir = "data"', 'data_dir = "data"\nlog_level = "LOUD"')
    )
    assert "agent.log_level" in err.message and "INFO" in err.fix
    err = error_for(tmp_path, GOOD.replace(APP_ID, "my-app"))
    assert "client_id" in err.message and "GUID" in err.message
    err = error_for(
        tmp_path,
        GOOD.replace(
            "[tenants.contoso.app]",
            'authority_host = "http://login.example"\n[tenants.contoso.app]',
        ),
    )
    assert "authority_host" in err.message and "https://" in err.message
    err = error_for(
        tmp_path, GOOD.replace("[tenants.contoso.app]", 'tenant_size = "XL"\n[tenants.contoso.app]')
    )
    assert "tenant_size" in err.message
    err = error_for(
        tmp_path,
        GOOD.replace(
            "[tenants.contoso.app]", 'ca_bundle = "missing-ca.pem"\n[tenants.contoso.app]'
        ),
    )
    assert "ca_bundle" in err.message and "missing-ca.pem" in err.message


def test_service_account_password_must_be_a_reference(tmp_path: Path) -> None:
    text = (
        GOOD
        + f"""
[tenants.contoso.service_account]
username = "svc@contoso.onmicrosoft.com"
password = "hunter2-literal"
client_id = "{APP_ID}"
"""
    )
    err = error_for(tmp_path, text)
    assert "service_account.password" in err.message
    assert "hunter2-literal" not in str(err)
    cfg = load_config(write(tmp_path, text.replace("hunter2-literal", "keyring:eb/svc")))
    account = cfg.tenant("contoso").service_account
    assert account is not None and account.password == "keyring:eb/svc"
