"""The agent reaches the bridge host with each WinRM authentication its config names: NTLM,
Negotiate and CredSSP (pyspnego's acceptors on the simulator), client certificates mapped to
the bridge account, Basic, NTLM and CredSSP over the lab's plain-HTTP listener (the last two
with WinRM message encryption). Kerberos needs a KDC: its logons are proven by
tests/kerberos (.ci/run-kerberos); here, what an agent without the Kerberos packages says."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import spnego
from cryptography.hazmat.primitives.asymmetric import ec
from pypsrp.encryption import WinRMEncryption

from agent.demo import agent_config_text, setup_agent
from agent.simulator import ca
from agent.simulator.service import BRIDGE_USER, Simulator, TenantSpec
from agent.simulator.winrm import sealing
from tests.agent_helpers import cli, cli_process

# Only what the bridge needs: the groups and one settings family keep each backup short.
KINDS = ("distributionGroup", "distributionGroupMember", "acceptedDomain")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(http_listener=True) as simulator:
        simulator.add_tenant(
            TenantSpec(name="contoso", seed=5, users=40, groups=8, distribution_groups=3)
        )
        yield simulator
        assert simulator.errors == [] and simulator.winrm.errors == []


def backup(tmp: Path, sim: Simulator, **exchange: str) -> tuple[int, str]:
    config = setup_agent(tmp, sim, kinds=KINDS, exchange=exchange)
    result = cli("backup", "--tenant", "contoso", "--config", str(config))
    text = " ".join((result.err + result.out).split())
    assert "Traceback" not in text
    return result.code, text


def refused_config(tmp: Path, sim: Simulator, **exchange: str) -> tuple[int, str]:
    """The CLI's answer to a config it must refuse before contacting anything."""
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "agent.toml"
    config.write_text(agent_config_text(tmp, sim, kinds=KINDS, exchange=exchange))
    result = cli("backup", "--tenant", "contoso", "--config", str(config))
    text = " ".join((result.err + result.out).split())
    assert "Traceback" not in text
    return result.code, text


def wsman_auth(sim: Simulator, since: int) -> set[str]:
    """How the WinRM requests after ``since`` were authenticated (the endpoint's note)."""
    return {
        str(item.note.get("auth"))
        for item in sim.log.items()[since:]
        if item.path == "/wsman" and item.status == 200 and "auth" in item.note
    }


def cert_file(tmp: Path, name: str, pem: bytes) -> str:
    path = tmp / name
    path.write_bytes(pem)
    path.chmod(0o600)
    return f'"file:{path.as_posix()}"'


@pytest.mark.parametrize("auth", ["ntlm", "negotiate"])
def test_ntlm_and_negotiate(tmp_path: Path, sim: Simulator, auth: str) -> None:
    since = len(sim.log.items())
    code, text = backup(tmp_path, sim, auth=f'"{auth}"')
    assert code == 0, text
    assert wsman_auth(sim, since) == {"negotiate"}  # never Basic
    statuses = [i.status for i in sim.log.items()[since:] if i.path == "/wsman"]
    assert statuses.count(401) == 2  # one handshake; the connection stays authenticated


def test_ntlm_with_a_wrong_password_names_the_fix(tmp_path: Path, sim: Simulator) -> None:
    password = cert_file(tmp_path, "wrong-password", b"not-the-password")
    code, text = backup(tmp_path, sim, auth='"ntlm"', password=password)
    assert code != 0
    assert "E711" in text and 'auth = "ntlm"' in text
    assert "tenants.contoso.exchange.username" in text and "password it references" in text
    assert "not-the-password" not in text


def test_client_certificate_mapped_to_the_bridge_account(tmp_path: Path, sim: Simulator) -> None:
    since = len(sim.log.items())
    path = sim.bridge_client_cert_path.as_posix()
    code, text = backup(tmp_path, sim, auth='"certificate"', client_certificate=f'"file:{path}"')
    assert code == 0, text
    assert wsman_auth(sim, since) == {"certificate"}


def test_unmapped_client_certificate_names_the_mapping(tmp_path: Path, sim: Simulator) -> None:
    # Issued by the CA the host trusts, but no mapping names this UPN.
    pem = sim.client_ca.issue("someone-else@localhost")
    code, text = backup(
        tmp_path, sim, auth='"certificate"', client_certificate=cert_file(tmp_path, "c.pem", pem)
    )
    assert code != 0 and "E711" in text and 'auth = "certificate"' in text
    assert "WSMan:\\localhost\\ClientCertificate" in text and "Auth/Certificate" in text


def test_untrusted_client_certificate_is_refused_in_the_handshake(
    tmp_path: Path, sim: Simulator
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = ca.pem(ca.certificate(BRIDGE_USER, key, days=30)) + ca.key_pem(key)
    code, text = backup(
        tmp_path, sim, auth='"certificate"', client_certificate=cert_file(tmp_path, "s.pem", pem)
    )
    assert code != 0 and "E711" in text
    assert "refused the WinRM client certificate" in text and "Trusted Root" in text


def test_kerberos_needs_the_hosts_dns_name(tmp_path: Path, sim: Simulator) -> None:
    # Kerberos names the host by DNS (its service principal): an IP address is refused first.
    url = f'"{sim.base_url}/wsman"'
    code, text = refused_config(tmp_path, sim, auth='"kerberos"', bridge_url=url)
    assert code != 0 and "E1" in text and "DNS name" in text and "127.0.0.1" in text


def test_kerberos_without_its_packages_names_what_to_install(
    tmp_path: Path, sim: Simulator
) -> None:
    # A machine without gssapi/krb5 (what `pip install entra-backup` alone gives on Linux):
    # packages of those names that fail to import stand in for the missing ones.
    hidden = tmp_path / "hidden"
    for name in ("gssapi", "krb5"):
        (hidden / name).mkdir(parents=True)
        (hidden / name / "__init__.py").write_text(
            f'raise ImportError("No module named {name!r}")\n'
        )
    url = f'"https://localhost:{sim.server.port}/wsman"'
    config = setup_agent(
        tmp_path / "agent", sim, kinds=KINDS, exchange={"auth": '"kerberos"', "bridge_url": url}
    )
    since = len(sim.log.items())
    path = os.pathsep.join(p for p in (str(hidden), os.environ.get("PYTHONPATH")) if p)
    result = cli_process(
        "backup", "--tenant", "contoso", "--config", str(config),
        env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip
    text = " ".join((result.err + result.out).split())
    assert result.code == 2, text  # a setup problem, like a config one
    assert "E715" in text and 'auth = "kerberos"' in text and "Traceback" not in text
    assert "entra-backup[kerberos]" in text and "MIT Kerberos" in text and "SSPI" in text
    # Refused before dialling: the bridge host saw nothing.
    assert not [i for i in sim.log.items()[since:] if i.path == "/wsman"]


def test_credssp_delegates_the_bridge_account(tmp_path: Path, sim: Simulator) -> None:
    since = len(sim.log.items())
    code, text = backup(tmp_path / "ok", sim, auth='"credssp"')
    assert code == 0, text
    assert wsman_auth(sim, since) == {"credssp"}
    password = cert_file(tmp_path, "wrong-password", b"not-the-password")
    code, text = backup(tmp_path / "wrong", sim, auth='"credssp"', password=password)
    assert code != 0 and "E711" in text and 'auth = "credssp"' in text
    assert "Enable-WSManCredSSP" in text and "not-the-password" not in text


def test_plain_http_only_when_allowed_and_loudly(tmp_path: Path, sim: Simulator) -> None:
    assert sim.http_server is not None
    url = f'"{sim.http_server.base_url}/wsman"'
    code, text = refused_config(tmp_path / "refused", sim, bridge_url=url)
    assert code != 0 and "plain http://" in text and "allow_http = true" in text
    since = len(sim.log.items())
    code, text = backup(tmp_path / "lab", sim, bridge_url=url, allow_http="true")
    assert code == 0, text
    assert "plain HTTP" in text and "lab only" in text
    assert wsman_auth(sim, since) == {"basic"}
    # NTLM over HTTP: every message sealed with the connection's NTLM context, as a Windows
    # host requires unless AllowUnencrypted is set.
    since = len(sim.log.items())
    code, text = backup(tmp_path / "ntlm", sim, bridge_url=url, allow_http="true", auth='"ntlm"')
    assert code == 0, text
    assert "only WinRM message encryption" in text
    assert wsman_auth(sim, since) == {"negotiate+sealed"}
    # CredSSP over HTTP: sealed with its inner TLS channel, cut into 16 KiB chunks when longer
    # (the module the loader sends is).
    since = len(sim.log.items())
    code, text = backup(
        tmp_path / "credssp", sim, bridge_url=url, allow_http="true", auth='"credssp"'
    )
    assert code == 0, text
    assert "plain HTTP" in text and "only WinRM message encryption" in text
    assert wsman_auth(sim, since) == {"credssp+sealed"}
    parts = [i.note["sealed_parts"] for i in sim.log.items()[since:] if "sealed_parts" in i.note]
    assert max(p[0] for p in parts) > 1
    # Certificates need the TLS listener: refused before anything is sent.
    code, text = refused_config(
        tmp_path / "cert",
        sim,
        bridge_url=url,
        allow_http="true",
        auth='"certificate"',
        client_certificate=f'"file:{sim.bridge_client_cert_path.as_posix()}"',
    )
    assert code != 0 and "HTTPS listener" in text


def test_credssp_sealing_cuts_long_messages_as_pypsrp_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both directions of a 40 KB message between pypsrp's encryption and the host's sealing:
    three 16 KiB TLS chunks in a multipart/x-multi-encrypted body."""
    users = tmp_path / "users"
    users.write_text(":alice:Pa55-word\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    client = spnego.client("alice", "Pa55-word", hostname="bridge", protocol="credssp")
    server = spnego.server(protocol="credssp")
    token = client.step()
    while not (client.complete and server.complete):
        token = server.step(token)
        token = client.step(token) if token else None
        if token is None and not server.complete:
            raise AssertionError("the CredSSP handshake stalled")
    message = bytes(range(256)) * 160  # 40 KB
    content_type, body = sealing.seal(server, message, sealing.CREDSSP)
    assert content_type.startswith("multipart/x-multi-encrypted;")
    assert sealing.parts(body) == 3
    client_side = WinRMEncryption(client, WinRMEncryption.CREDSSP)
    assert client_side.unwrap_message(body, "Encrypted Boundary") == message
    kind, sent = client_side.wrap_message(message)
    assert kind == "multipart/x-multi-encrypted" and sealing.parts(sent) == 3
    assert sealing.unseal(server, sent) == message
