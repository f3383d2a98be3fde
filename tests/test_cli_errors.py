"""Operator mistakes and outside failures: one clear message, a non-zero exit, no secret."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.agent_helpers import agent_for, cli, cli_process, simulated_tenant


@pytest.fixture
def secret_env(tmp_path: Path):
    with simulated_tenant(tmp_path / "sim", users=40, groups=8) as sim:
        config, rt = agent_for(tmp_path / "agent", sim, credential="secret")
        yield sim, config, rt
        rt.close()


def assert_clean_failure(result, code: int, *needles: str) -> None:
    text = result.out + result.err
    assert result.code == code, text
    assert "Traceback" not in text
    for needle in needles:
        assert needle.lower() in text.lower(), text


def test_wrong_client_secret_is_named_and_never_printed(secret_env) -> None:
    sim, config, rt = secret_env
    secret_file = Path(config).parent / "keys" / "contoso.secret"
    wrong = "Wr0ng~SecretValue.ThatMustNeverBePrinted"
    secret_file.write_text(wrong)
    result = cli("backup", "--tenant", "contoso", "--config", str(config))
    assert_clean_failure(result, 3, "secret")
    assert wrong not in result.out + result.err
    log_text = "".join(p.read_text() for p in Path(rt.config.agent.data_dir).rglob("*.jsonl"))
    assert wrong not in log_text
    job = cli("jobs", "list", "--config", str(config), "--json").json()[0]
    assert job["status"] == "failed" and "secret" in job["error"].lower()
    assert wrong not in job["error"]


def test_unknown_tenant_name_lists_the_configured_ones(secret_env) -> None:
    sim, config, rt = secret_env
    result = cli("backup", "--tenant", "fabrikam", "--config", str(config))
    assert_clean_failure(result, 2, "fabrikam", "contoso")


def test_unreachable_endpoint_is_a_connection_failure(secret_env, tmp_path: Path) -> None:
    sim, config, rt = secret_env
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    text = Path(config).read_text().replace(sim.base_url, f"https://127.0.0.1:{closed_port}")
    Path(config).write_text(text)
    result = cli("backup", "--tenant", "contoso", "--config", str(config))
    assert_clean_failure(result, 4, f"127.0.0.1:{closed_port}")


def test_untrusted_certificate_points_at_ca_bundle(secret_env, tmp_path: Path) -> None:
    sim, config, rt = secret_env
    from agent.simulator.ca import generate

    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(generate().ca_pem)
    text = Path(config).read_text().replace(sim.ca_path.as_posix(), other_ca.as_posix())
    Path(config).write_text(text)
    result = cli("backup", "--tenant", "contoso", "--config", str(config))
    assert_clean_failure(result, 4, "ca_bundle")


def test_config_typo_names_file_key_and_fix(secret_env) -> None:
    sim, config, rt = secret_env
    text = Path(config).read_text().replace("log_level =", "log_levle =")
    Path(config).write_text(text)
    result = cli("jobs", "list", "--config", str(config))
    assert_clean_failure(result, 2, "agent.toml", "log_levle", "log_level")


def test_missing_config_file(tmp_path: Path) -> None:
    result = cli("jobs", "list", "--config", str(tmp_path / "nope.toml"))
    assert_clean_failure(result, 2, "nope.toml", "entra-backup init")


def test_wrong_repository_key(secret_env) -> None:
    sim, config, rt = secret_env
    from agent.store.keys import RepositoryKey

    key_file = Path(config).parent / "keys" / "repository.key"
    key_file.write_text(RepositoryKey.generate().to_text())
    result = cli("backup", "--tenant", "contoso", "--config", str(config))
    assert_clean_failure(result, 5, "key")


def test_failures_exit_non_zero_from_a_real_process(secret_env) -> None:
    sim, config, rt = secret_env
    result = cli_process("backup", "--tenant", "fabrikam", "--config", str(config))
    assert_clean_failure(result, 2, "fabrikam")
