"""Kerberos to the bridge host, end to end: a throwaway MIT KDC on loopback (kdc.py) issues the
bridge account's tickets, the simulated bridge host accepts them with its HTTP/localhost
keytab (pyspnego + gssapi), and the agent runs real Exchange backups with auth = "kerberos"
over HTTPS (channel binding to the host's certificate) and over the lab's HTTP listener
(Kerberos message encryption); then what an operator sees when the password, the account, the
host's service principal, the KDC or the ticket is wrong.

Not part of the main suite (it needs MIT Kerberos and gssapi): run it with .ci/run-kerberos.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import spnego
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from spnego.channel_bindings import GssChannelBindings

from agent.config import load_config
from agent.demo import setup_agent
from agent.kinds import known_names
from agent.runtime import Runtime
from agent.simulator.service import BRIDGE_USER, Simulator, TenantSpec
from tests.agent_helpers import cli, counts
from tests.kerberos.kdc import ThrowawayKdc, tool

REALM = "BRIDGE.TEST"
KINDS = ("distributionGroup", "distributionGroupMember", "acceptedDomain")
DISTRIBUTION_GROUPS = 3


@dataclass
class Lab:
    sim: Simulator
    kdc: ThrowawayKdc
    password: str
    keytab: Path

    @property
    def https_url(self) -> str:
        return f"https://localhost:{self.sim.server.port}/wsman"

    @property
    def http_url(self) -> str:
        assert self.sim.http_server is not None
        return f"http://localhost:{self.sim.http_server.port}/wsman"


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback TCP port nothing listens on (bound but not listening, for the block)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("realm")
    with (
        pytest.MonkeyPatch.context() as env,
        Simulator(http_listener=True) as sim,
        ThrowawayKdc(folder / "kdc", REALM) as kdc,
    ):
        # The agent and the host both run in this process: both use this realm's krb5.conf.
        for name in ("KRB5_CONFIG", "KRB5CCNAME"):
            env.setenv(name, kdc.env[name])
        sim.add_tenant(
            TenantSpec(
                name="contoso",
                seed=5,
                users=40,
                groups=8,
                distribution_groups=DISTRIBUTION_GROUPS,
            )
        )
        # The bridge account is a domain account: its password lives in the KDC.
        password = sim.bridge_password_path.read_text().strip()
        kdc.add_user(BRIDGE_USER, password)
        keytab = kdc.add_service("HTTP/localhost", folder / "http.keytab")
        sim.winrm.auth.accept_kerberos(keytab, REALM)
        yield Lab(sim, kdc, password, keytab)
        assert sim.errors == [] and sim.winrm.errors == []


def backup(tmp: Path, lab: Lab, **exchange: str) -> tuple[int, str, Path]:
    config = setup_agent(tmp, lab.sim, kinds=KINDS, exchange={"auth": '"kerberos"', **exchange})
    result = cli("backup", "--tenant", "contoso", "--config", str(config))
    text = " ".join((result.err + result.out).split())
    assert "Traceback" not in text and lab.password not in text
    return result.code, text, config


def wsman_auth(lab: Lab, since: int) -> set[str]:
    return {
        str(item.note.get("auth"))
        for item in lab.sim.log.items()[since:]
        if item.path == "/wsman" and item.status == 200 and "auth" in item.note
    }


def snapshot_counts(config: Path) -> dict[str, int]:
    rt = Runtime(load_config(config, known_kinds=known_names()))
    try:
        latest = rt.catalog.latest_snapshot("contoso")
        assert latest is not None
        return counts(rt, latest.id)
    finally:
        rt.close()


def test_backup_over_https_with_a_kerberos_ticket(tmp_path: Path, lab: Lab) -> None:
    since = len(lab.sim.log.items())
    code, text, config = backup(tmp_path, lab, bridge_url=f'"{lab.https_url}"')
    assert code == 0, text
    assert wsman_auth(lab, since) == {"kerberos"}  # not NTLM, not Basic
    statuses = [i.status for i in lab.sim.log.items()[since:] if i.path == "/wsman"]
    assert statuses.count(401) == 1  # one AP-REQ; the connection stays authenticated
    assert snapshot_counts(config) == {
        "distributionGroup": DISTRIBUTION_GROUPS,
        "distributionGroupMember": DISTRIBUTION_GROUPS,
        "acceptedDomain": 2,
    }
    # The KDC issued the bridge account a ticket for the host's service principal.
    issued = lab.kdc.log.read_text()
    assert f"{BRIDGE_USER}@{REALM} for HTTP/localhost@{REALM}" in issued


def test_backup_over_http_is_sealed_with_kerberos(tmp_path: Path, lab: Lab) -> None:
    since = len(lab.sim.log.items())
    code, text, _ = backup(tmp_path, lab, bridge_url=f'"{lab.http_url}"', allow_http="true")
    assert code == 0, text
    assert "plain HTTP" in text and "only WinRM message encryption" in text
    assert wsman_auth(lab, since) == {"kerberos+sealed"}


def test_a_ticket_from_kinit_needs_no_password(tmp_path: Path, lab: Lab) -> None:
    url = f'"{lab.https_url}"'
    code, text, _ = backup(tmp_path / "none", lab, bridge_url=url, password='""')
    assert code == 3 and "E711" in text
    assert "no Kerberos ticket and no password" in text and "kinit" in text
    subprocess.run(
        [tool("kinit"), f"{BRIDGE_USER}@{REALM}"],
        input=lab.password + "\n",
        env={**os.environ},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    try:
        since = len(lab.sim.log.items())
        code, text, _ = backup(tmp_path / "kinit", lab, bridge_url=url, password='""')
        assert code == 0, text
        assert wsman_auth(lab, since) == {"kerberos"}
    finally:
        subprocess.run([tool("kdestroy")], env={**os.environ}, check=False, timeout=60)


def test_wrong_password_is_refused_by_the_kdc(tmp_path: Path, lab: Lab) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    wrong.chmod(0o600)
    since = len(lab.sim.log.items())
    code, text, _ = backup(
        tmp_path / "agent", lab, bridge_url=f'"{lab.https_url}"', password=f'"file:{wrong}"'
    )
    assert code == 3 and "E711" in text, text
    assert "the KDC refused the password" in text and "not-the-password" not in text
    assert "tenants.contoso.exchange.username and the password it references" in text
    assert wsman_auth(lab, since) == set()  # no ticket, so nothing reached the host


def test_unknown_principal_is_named(tmp_path: Path, lab: Lab) -> None:
    code, text, _ = backup(tmp_path, lab, bridge_url=f'"{lab.https_url}"', username='"nobody"')
    assert code == 3 and "E711" in text, text
    assert "the KDC does not know the account" in text and "nobody@BRIDGE.TEST" in text
    assert "user@REALM" in text


def test_host_refuses_a_realm_account_that_is_not_its_user(tmp_path: Path, lab: Lab) -> None:
    # The KDC knows the account and issues the ticket; the host maps it to no account allowed
    # to use WinRM, so it answers 401 after checking the ticket.
    secret = tmp_path / "intruder-password"
    secret.write_text("Intruder-pw-1")
    secret.chmod(0o600)
    lab.kdc.add_user("intruder", "Intruder-pw-1")
    code, text, _ = backup(
        tmp_path / "agent",
        lab,
        bridge_url=f'"{lab.https_url}"',
        username='"intruder"',
        password=f'"file:{secret}"',
    )
    assert code == 3 and "E711" in text, text
    assert 'refused WinRM authentication (auth = "kerberos")' in text
    assert "Remote Management Users" in text and "Intruder-pw-1" not in text
    assert f"intruder@{REALM} for HTTP/localhost@{REALM}" in lab.kdc.log.read_text()


def test_host_without_a_service_principal(tmp_path: Path, lab: Lab) -> None:
    lab.kdc.kadmin("delprinc -force HTTP/localhost")
    try:
        code, text, _ = backup(tmp_path, lab, bridge_url=f'"{lab.https_url}"')
    finally:  # the host joins again with a new key
        keytab = lab.kdc.add_service("HTTP/localhost", tmp_path / "http.keytab")
        lab.sim.winrm.auth.accept_kerberos(keytab, REALM)
    assert code == 3 and "E711" in text, text
    assert "no service principal HTTP/<host>" in text and "setspn -S HTTP/<host>" in text


def test_unreachable_kdc_is_named(
    tmp_path: Path, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    with closed_port() as port:
        conf = tmp_path / "krb5.conf"
        conf.write_text(
            lab.kdc.krb5_conf.read_text().replace(f":{lab.kdc.port}", f":{port}"),
        )
        monkeypatch.setenv("KRB5_CONFIG", str(conf))
        code, text, _ = backup(tmp_path, lab, bridge_url=f'"{lab.https_url}"')
    assert code == 3 and "E711" in text, text
    assert "no Kerberos KDC answered" in text and "krb5.conf" in text


def test_host_refuses_a_ticket_bound_to_another_channel(lab: Lab) -> None:
    """Channel binding: the host accepts an AP-REQ only if it is bound to its own TLS
    certificate (tls-server-end-point), so a ticket relayed through another TLS channel fails."""
    pem = lab.sim.server.tls.cert_pem
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    own = b"tls-server-end-point:" + hashlib.sha256(der).digest()
    other = b"tls-server-end-point:" + hashlib.sha256(b"another certificate").digest()
    outcomes = {}
    for name, binding in (("own", own), ("other", other)):
        context = spnego.client(
            f"{BRIDGE_USER}@{REALM}",
            lab.password,
            hostname="localhost",
            service="HTTP",
            protocol="kerberos",
            channel_bindings=GssChannelBindings(application_data=binding),
        )
        token = base64.b64encode(context.step() or b"").decode()
        answer = requests.post(
            lab.https_url,
            data=b"",
            headers={"Authorization": f"Negotiate {token}"},
            verify=str(lab.sim.ca_path),
            timeout=30,
        )
        outcomes[name] = answer.status_code
    assert outcomes == {"own": 200, "other": 401}
