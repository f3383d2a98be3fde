"""The [tenants.X.exchange] section: what loads, and one clear ConfigError per mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.config import load_config, render_example_config
from agent.errors import ConfigError
from agent.kinds import known_names
from agent.kinds.exchange import SETTINGS_KINDS, selected_settings

APP_ID = "11111111-2222-3333-4444-555555555555"
BASE = f"""
[agent]
data_dir = "data"

[tenants.contoso]
tenant_id = "contoso.onmicrosoft.com"

[tenants.contoso.app]
client_id = "{APP_ID}"
client_secret = "env:CONTOSO_CLIENT_SECRET"
"""
EXCHANGE = """
[tenants.contoso.exchange]
bridge_url = "https://bridge01.contoso.local:5986/wsman"
auth = "ntlm"
username = "CONTOSO\\\\svc-bridge"
password = "env:BRIDGE_PASSWORD"
organization = "contoso.onmicrosoft.com"
certificate_thumbprint = "0123456789abcdef0123456789ABCDEF01234567"
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return load_config(path, known_kinds=known_names())


def error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value


def test_a_good_section_loads_with_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, BASE + EXCHANGE)
    ex = cfg.tenant("contoso").exchange  # type: ignore[attr-defined]
    assert ex.auth == "ntlm" and ex.username == "CONTOSO\\svc-bridge"
    assert ex.connect == "certificate_thumbprint"
    assert ex.settings == ["*"] and ex.call_timeout_s == 900
    assert selected_settings(ex.settings) == {k.name for k in SETTINGS_KINDS}


def test_the_example_documents_every_key() -> None:
    example = render_example_config()
    from agent.config import ExchangeConfig

    for key in ExchangeConfig.model_fields:
        assert re.search(rf"^# {key} = ", example, re.M), f"{key} missing from the example"


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (("https://bridge01", "http://bridge01"), ["plain http://", "allow_http"]),
        (('password = "env:BRIDGE_PASSWORD"', 'password = "hunter2"'), ["not a secret ref"]),
        (('auth = "ntlm"', 'auth = "digest"'), ["auth"]),
        (
            ('organization = "contoso.onmicrosoft.com"', 'organization = "contoso.com"'),
            [".onmicrosoft.com"],
        ),
        (
            ('certificate_thumbprint = "0123456789abcdef0123456789ABCDEF01234567"', ""),
            ["certificate_thumbprint", "service_account"],
        ),
        (('username = "CONTOSO\\\\svc-bridge"', ""), ["needs username and password"]),
        (
            ('auth = "ntlm"', 'auth = "certificate"\nclient_certificate = "env:PEM"'),
            ["file: reference"],
        ),
        (('auth = "ntlm"', 'auth = "certificate"'), ["client_certificate"]),
        (('auth = "ntlm"', 'auth = "ntlm"\nsetings = ["*"]'), ["Did you mean 'settings'"]),
    ],
)
def test_mistakes_name_key_and_fix(
    tmp_path: Path, change: tuple[str, str], needles: list[str]
) -> None:
    old, new = change
    assert old in EXCHANGE
    problem = error(tmp_path, BASE + EXCHANGE.replace(old, new))
    text = f"{problem.message} {problem.fix}"
    assert "exchange" in text
    for needle in needles:
        assert needle in text, text
    assert "hunter2" not in text


def test_plain_http_loads_when_allowed_for_a_lab(tmp_path: Path) -> None:
    text = EXCHANGE.replace("https://bridge01", "http://bridge01") + "allow_http = true\n"
    cfg = load(tmp_path, BASE + text)
    assert cfg.tenant("contoso").exchange.bridge_url.startswith("http://")  # type: ignore[attr-defined]


def test_service_account_connect_needs_a_service_account(tmp_path: Path) -> None:
    text = EXCHANGE + 'connect = "service_account"\n'
    problem = error(tmp_path, BASE + text)
    assert "no service_account" in problem.message
    assert "[tenants.contoso.service_account]" in problem.fix


def test_unknown_setting_family_suggests_the_nearest(tmp_path: Path) -> None:
    problem = error(tmp_path, BASE + EXCHANGE + 'settings = ["defender", "safeLinkPolicy"]\n')
    assert "safeLinkPolicy" in problem.message and "safeLinksPolicy" in problem.fix


def test_families_by_area(tmp_path: Path) -> None:
    defender = selected_settings(["defender"])
    assert "safeLinksPolicy" in defender and "organizationConfig" not in defender
    assert selected_settings(["exchange", "arcConfig"]) >= {"transportRule", "arcConfig"}


def test_missing_bridge_ca_bundle_file(tmp_path: Path) -> None:
    problem = error(tmp_path, BASE + EXCHANGE + 'ca_bundle = "missing-ca.pem"\n')
    assert "missing-ca.pem" in problem.message and "does not exist" in problem.message
