"""Groups general settings through the admin portal API with the tenant's service account:
backed up when there is one, skipped by name when there is not, and plain errors for MFA and
a wrong password (never the password itself)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from agent.auth import ServiceAccountTokenProvider
from agent.config import load_config
from agent.errors import PermissionMissing
from agent.http import make_session
from agent.jobs.backup import run_backup
from agent.kinds import known_names
from agent.portal import PortalClient
from agent.simulator.service import READ_PERMISSIONS, Simulator, TenantSpec
from tests.agent_helpers import agent_for, cli, simulated_tenant, state_of

KIND = "groupsGeneralSettings"
# Every Graph kind readable (activity logs too), so "everything else succeeds" means it.
SMALL = {"users": 60, "groups": 8, "graph_permissions": [*READ_PERMISSIONS, "AuditLog.Read.All"]}


def _settings_in(rt, snapshot_id: int) -> dict:
    blob = state_of(rt, snapshot_id)[(KIND, KIND)]
    return rt.repository.get(blob)


def test_settings_are_backed_up_and_follow_changes_in_the_tenant(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", service_account=True, **SMALL) as sim:
        directory = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim)
        first = run_backup(rt, "contoso", force_full=True)
        assert first.status == "succeeded"
        assert _settings_in(rt, first.snapshot.id) == {"id": KIND, **directory.ssgm}

        seed = 0
        while not directory.churn(random.Random(seed), 0.01).groups_general_settings_changed:
            seed += 1
        second = run_backup(rt, "contoso")
        assert _settings_in(rt, second.snapshot.id) == {"id": KIND, **directory.ssgm}
        assert _settings_in(rt, second.snapshot.id) != _settings_in(rt, first.snapshot.id)
        changed = {k.kind: k.changed for k in second.snapshot.kinds}
        assert changed[KIND] == 1
        assert sim.errors == []
        rt.close()


def test_without_a_service_account_only_this_kind_is_skipped(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", **SMALL) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        result = cli("backup", "--tenant", "contoso", "--config", str(config), "--json")
        assert result.code == 0, result.err
        report = result.json()
        assert report["status"] == "succeeded"
        kinds = {k["kind"]: k for k in report["kinds"]}
        assert kinds[KIND]["status"] == "skipped"
        assert kinds[KIND]["reason"] == "needs a service account profile"
        others = [k for name, k in kinds.items() if name != KIND]
        # Opt-in kinds (BitLocker keys) are skipped unless the tenant turns them on.
        assert others and all(
            k["status"] == "succeeded" or k["reason"] == "not enabled for this tenant"
            for k in others
        )
        # No sign-in was attempted for a service account that is not configured.
        assert not any("/api/Directories" in r.path for r in sim.log.items())
        rt.close()


def test_service_account_under_mfa_fails_the_kind_with_a_plain_message(tmp_path: Path) -> None:
    with simulated_tenant(
        tmp_path / "sim", service_account=True, service_account_mfa=True, **SMALL
    ) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        result = cli("backup", "--tenant", "contoso", "--config", str(config), "--json")
        assert result.code == 10, result.err  # partial: every other kind was backed up
        assert "Traceback" not in result.out + result.err
        kinds = {k["kind"]: k for k in result.json()["kinds"]}
        assert kinds[KIND]["status"] == "failed"
        assert "service accounts with MFA are not supported" in kinds[KIND]["reason"]
        assert all(
            k["status"] == "succeeded" or k["reason"] == "not enabled for this tenant"
            for n, k in kinds.items()
            if n != KIND
        )
        rt.close()


def test_wrong_password_names_the_setting_never_the_password(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", service_account=True, **SMALL) as sim:
        account = sim.tenants["contoso"].service_account
        assert account is not None
        real = account.password_path.read_text()
        wrong = "Wrong-Passw0rd-that-must-not-leak"
        account.password_path.write_text(wrong)
        config, rt = agent_for(tmp_path / "agent", sim)
        result = cli("backup", "--tenant", "contoso", "--config", str(config), "--json")
        assert result.code == 10, result.err
        reason = {k["kind"]: k for k in result.json()["kinds"]}[KIND]["reason"]
        assert "AADSTS50126" in reason
        assert "[tenants.contoso].service_account" in reason
        assert f"file:{account.password_path.as_posix()}" in reason
        job = rt.catalog.jobs("contoso")[0]
        logged = " ".join(e.message for e in rt.catalog.events(job.id))
        log_files = " ".join(p.read_text() for p in (tmp_path / "agent").rglob("*.log"))
        for text in (result.out, result.err, logged, log_files, str(job.error)):
            assert wrong not in text and real not in text
        rt.close()


@pytest.fixture
def portal_tenant(tmp_path: Path):
    """A tenant whose service account holds ``roles``; yields (sim, client factory)."""
    sims: list[Simulator] = []

    def start(roles: list[str]) -> tuple[Simulator, PortalClient]:
        sim = Simulator(tmp_path / "sim")
        sim.add_tenant(
            TenantSpec(
                name="contoso",
                seed=3,
                service_account=True,
                service_account_roles=roles,
                **SMALL,
            )
        )
        sims.append(sim.start())
        config, _ = agent_for(tmp_path / "agent", sim)
        tenant = load_config(config, known_kinds=known_names()).tenant("contoso")
        session = make_session(Path(tenant.ca_bundle), user_agent="entra-backup-test")
        tokens = ServiceAccountTokenProvider(tenant, session)
        return sim, PortalClient(tenant.portal_url, session, tokens)

    yield start
    for sim in sims:
        sim.stop()


def test_portal_put_needs_cloud_application_administrator(portal_tenant) -> None:
    sim, client = portal_tenant([])
    settings = client.groups_general_settings()
    assert settings["objectId"] == sim.tenants["contoso"].tenant_id
    changed = {**settings, "selfServiceGroupManagementEnabled": True}
    with pytest.raises(PermissionMissing, match="Cloud Application Administrator"):
        client.set_groups_general_settings(changed)
    assert client.groups_general_settings() == settings


def test_portal_put_replaces_the_whole_object_and_persists(portal_tenant, tmp_path) -> None:
    sim, client = portal_tenant(["Cloud Application Administrator"])
    settings = client.groups_general_settings()
    changed = {**settings, "selfServiceGroupManagementEnabled": True, "allUsersGroupEnabled": True}
    client.set_groups_general_settings(changed)
    assert client.groups_general_settings() == changed
    # A partial object or a read-only change is refused as a bad request.
    partial = {"selfServiceGroupManagementEnabled": False}
    token = client.tokens.token("74658136-14ec-4630-ad9b-26e160ff0fc6/.default")
    url = f"{sim.base_url}/api/Directories/SsgmProperties/"
    headers = {"Authorization": f"Bearer {token}"}
    answer = client.session.put(url, json=partial, headers=headers, timeout=30)
    assert answer.status_code == 400 and "Missing properties" in answer.json()["Message"]
    moved = {**changed, "objectId": "00000000-0000-0000-0000-000000000000"}
    answer = client.session.put(url, json=moved, headers=headers, timeout=30)
    assert answer.status_code == 400 and "Read-only" in answer.json()["Message"]
    sim.stop()  # state is saved with the directory …
    again = Simulator(tmp_path / "sim")
    again.add_tenant(TenantSpec(name="contoso", seed=3, service_account=True, **SMALL))
    assert again.tenants["contoso"].directory.ssgm == changed  # … and loaded back
    again.stop()


def test_portal_refuses_tokens_for_other_audiences_and_app_only_tokens(
    portal_tenant,
) -> None:
    sim, client = portal_tenant([])
    url = f"{sim.base_url}/api/Directories/SsgmProperties/"
    graph_token = client.tokens.token("https://graph.microsoft.com/.default")
    for token in (graph_token, "not-a-token"):
        answer = client.session.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert answer.status_code == 401
        assert answer.json() == {"Message": "Authorization has been denied for this request."}
    # An app-only token for the portal resource: the portal serves people only.
    handle = sim.tenants["contoso"]
    form = {
        "grant_type": "client_credentials",
        "client_id": handle.client_id,
        "client_secret": handle.client_secret,
        "scope": "74658136-14ec-4630-ad9b-26e160ff0fc6/.default",
    }
    issued = client.session.post(
        f"{sim.base_url}/{handle.tenant_id}/oauth2/v2.0/token", data=form, timeout=30
    ).json()["access_token"]
    answer = client.session.get(url, headers={"Authorization": f"Bearer {issued}"}, timeout=30)
    assert answer.status_code == 401
