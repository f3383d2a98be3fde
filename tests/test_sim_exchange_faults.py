"""Failure modes of the simulated Exchange, each as the module's envelope reports it: not
licensed, missing role, MFA on the service account, throttling with a back-off hint, slow and
timed-out cmdlets, the ExchangeOnlineManagement module missing; and churn as later exports
see it."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator

import pytest
from pypsrp.complex_objects import PSCredential
from pypsrp.powershell import RunspacePool
from pypsrp.serializer import TaggedValue

from agent.exchange.protocol import iso_utc, retry_after_seconds
from agent.simulator.exchange.churn import churn
from agent.simulator.service import Simulator, TenantHandle, TenantSpec
from agent.simulator.world import ServiceAccount
from tests.exchange_helpers import connect, load, open_bridge, run, set_setting, wsman

MDO = ["Get-SafeLinksPolicy", "Get-SafeAttachmentRule", "Get-AtpPolicyForO365"]
DL = "MailUniversalDistributionGroup"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_tenant(TenantSpec(name="contoso", seed=5, users=60, groups=20))
        simulator.add_tenant(
            TenantSpec(name="eoponly", seed=6, users=40, groups=10, defender_licensed=False)
        )
        yield simulator
        assert simulator.errors == [] and simulator.winrm.errors == []


def test_not_licensed_for_defender(sim: Simulator) -> None:
    tenant = sim.tenants["eoponly"]
    with open_bridge(sim, tenant) as pool:
        envelope = run(pool, "Export-EbSettings", Cmdlet=[*MDO, "Get-HostedContentFilterPolicy"])
        assert envelope["succeeded"] == ["Get-HostedContentFilterPolicy"]
        assert {e["cmdlet"]: e["category"] for e in envelope["errors"]} == dict.fromkeys(
            MDO, "NotLicensed"
        )
        write = set_setting(
            pool,
            "Set-SafeLinksPolicy",
            {"TrackClicks": False},
            identity="Built-In Protection Policy",
        )
        assert write["errors"][0]["category"] == "NotLicensed"
        new = run(pool, "New-EbPolicyWithRule", Family="SafeAttachment", Name="X", Priority=0)
        assert new["errors"][0]["category"] == "NotLicensed"
        # Anti-phishing exists in EOP, its impersonation settings only with Defender.
        phish = set_setting(
            pool,
            "Set-AntiPhishPolicy",
            {"EnableTargetedUserProtection": True},
            identity="Office365 AntiPhish Default",
        )
        assert phish["errors"][0]["category"] == "NotLicensed"
        spoof = set_setting(
            pool,
            "Set-AntiPhishPolicy",
            {"EnableSpoofIntelligence": False},
            identity="Office365 AntiPhish Default",
        )
        assert spoof["ok"]


def test_missing_role(sim: Simulator) -> None:
    tenant = sim.tenants["contoso"]
    tenant.exchange.app_exchange_admin = False
    try:
        with open_bridge(sim, tenant) as pool:
            envelope = run(pool, "Export-EbDistributionGroups", RecipientTypeDetails=DL)
            assert envelope["errors"][0]["category"] == "Permission"
            settings = run(pool, "Export-EbSettings", Cmdlet=["Get-OrganizationConfig"])
            assert settings["errors"][0]["category"] == "Permission"
    finally:
        tenant.exchange.app_exchange_admin = True


def _account(tenant: TenantHandle, mfa: bool) -> tuple[str, str]:
    username, password = f"backup-{'mfa' if mfa else 'plain'}@{tenant.domain}", "Sv3-Acc0unt!"
    tenant_obj = tenant.exchange.tenant
    tenant_obj.accounts[username] = ServiceAccount(
        username,
        hashlib.sha256(password.encode()).hexdigest(),
        mfa_required=mfa,
        directory_roles=["29232cdf-9323-42fd-ade2-1d097af3e4de"],  # Exchange Administrator
    )
    return username, password


def test_service_account_connect_and_mfa(sim: Simulator) -> None:
    tenant = sim.tenants["contoso"]
    with RunspacePool(wsman(sim)) as pool:
        load(pool)
        pool.exchange_keys()  # SecureString / PSCredential need the session key
        username, password = _account(tenant, mfa=False)
        plain = run(
            pool,
            "Connect-EbExchange",
            Credential=PSCredential(username=username, password=password),
        )
        assert plain["ok"], plain["errors"]
        assert run(pool, "Export-EbSettings", Cmdlet=["Get-ArcConfig"])["ok"]
        wrong = run(
            pool, "Connect-EbExchange", Credential=PSCredential(username=username, password="nope")
        )
        assert "AADSTS50126" in wrong["errors"][0]["message"]
        username, password = _account(tenant, mfa=True)
        mfa = run(
            pool,
            "Connect-EbExchange",
            Credential=PSCredential(username=username, password=password),
        )
        assert mfa["failed"] == ["Connect-ExchangeOnline"]
        assert mfa["errors"][0]["category"] == "Mfa"
        # A failed connect leaves the session without Exchange.
        assert (
            run(pool, "Export-EbSettings", Cmdlet=["Get-ArcConfig"])["errors"][0]["category"]
            == "Permission"
        )
        file_connect = run(
            pool,
            "Connect-EbExchange",
            AppId=tenant.client_id,
            Organization=tenant.domain,
            CertificateFilePath=str(tenant.certificate_path),
            CertificatePassword=TaggedValue("SS", "unused"),
        )
        assert file_connect["ok"], file_connect["errors"]


def test_wrong_app_or_certificate_fails_connect(sim: Simulator) -> None:
    tenant = sim.tenants["contoso"]
    with RunspacePool(wsman(sim)) as pool:
        load(pool)
        unknown_app = run(
            pool,
            "Connect-EbExchange",
            AppId="00000000-1111-2222-3333-444444444444",
            Organization=tenant.domain,
            CertificateThumbprint="A" * 40,
        )
        assert "AADSTS700016" in unknown_app["errors"][0]["message"]
        wrong_cert = run(
            pool,
            "Connect-EbExchange",
            AppId=tenant.client_id,
            Organization=tenant.domain,
            CertificateThumbprint="A" * 40,
        )
        assert "AADSTS700027" in wrong_cert["errors"][0]["message"]
        no_tenant = run(
            pool,
            "Connect-EbExchange",
            AppId=tenant.client_id,
            Organization="nowhere.example",
            CertificateThumbprint="A" * 40,
        )
        assert "AADSTS90002" in no_tenant["errors"][0]["message"]


def test_throttled_with_a_back_off_hint(sim: Simulator) -> None:
    tenant = sim.tenants["contoso"]
    faults = tenant.exchange.faults
    faults.throttle_limit, faults.throttle_retry_after_s = 3, 7
    try:
        with open_bridge(sim, tenant) as pool:
            cmdlets = [
                "Get-OrganizationConfig",
                "Get-TransportConfig",
                "Get-RemoteDomain",
                "Get-ArcConfig",
                "Get-AcceptedDomain",
            ]
            envelope = run(pool, "Export-EbSettings", Cmdlet=cmdlets)
        assert envelope["succeeded"] == cmdlets[:3]
        throttled = envelope["errors"]
        assert [e["category"] for e in throttled] == ["Throttled", "Throttled"]
        assert retry_after_seconds(throttled[0]["message"]) == 7
    finally:
        faults.throttle_limit = None
    faults.throttled_until = time.monotonic() + 60
    try:
        with open_bridge(sim, tenant) as pool:
            hint = run(pool, "Export-EbSettings", Cmdlet=["Get-ArcConfig"])["errors"][0]["message"]
        assert 50 <= (retry_after_seconds(hint) or 0) <= 60
    finally:
        faults.throttled_until = 0.0


def test_slow_cmdlets_and_rest_timeout(sim: Simulator) -> None:
    tenant = sim.tenants["contoso"]
    faults = tenant.exchange.faults
    faults.latency_s = {"Get-TransportConfig": 0.4, "Update-DistributionGroupMember": 5.0}
    faults.rest_timeout_s = 0.6  # stands for Exchange's 15 minutes
    try:
        with open_bridge(sim, tenant) as pool:
            started = time.monotonic()
            slow = run(pool, "Export-EbSettings", Cmdlet=["Get-TransportConfig"])
            assert slow["ok"] and time.monotonic() - started >= 0.4
            group = next(iter(tenant.exchange.dls.values()))
            timed_out = run(pool, "Sync-EbDistributionGroupMember", Identity=group.guid, Members=[])
            assert timed_out["failed"] == ["Update-DistributionGroupMember"]
            assert "Timeout" in timed_out["errors"][0]["message"]
    finally:
        faults.latency_s, faults.rest_timeout_s = {}, 900.0


def test_module_missing_on_the_bridge_host(sim: Simulator) -> None:
    tenant = sim.tenants["contoso"]
    sim.bridge.exo_module_installed = False
    try:
        with RunspacePool(wsman(sim)) as pool:
            loaded = load(pool)
            assert not loaded["ok"] and loaded["errors"][0]["category"] == "ModuleMissing"
            assert loaded["items"][0]["exchangeOnlineManagement"] is None
            connected = connect(pool, tenant)
            assert connected["failed"] == ["Connect-ExchangeOnline"]
            assert "is not recognized" in connected["errors"][0]["message"]
    finally:
        sim.bridge.exo_module_installed = True


def test_churn_shows_in_the_next_changed_since_export(sim: Simulator) -> None:
    tenant = sim.tenants["contoso"]
    directory = tenant.directory
    with open_bridge(sim, tenant) as pool:
        before = {
            i["ExternalDirectoryObjectId"]
            for i in run(pool, "Export-EbDistributionGroups", RecipientTypeDetails=DL)["items"]
        }
        mark = directory.now()
        directory.advance_clock(5)  # a later second: WhenChangedUTC has whole seconds
        summary = churn(tenant.exchange, random.Random(1), fraction=0.3)
        import datetime as dt

        since = iso_utc(dt.datetime.fromtimestamp(mark, dt.UTC))
        changed = run(
            pool, "Export-EbDistributionGroups", RecipientTypeDetails=DL, ChangedSinceUtc=since
        )
        after = run(pool, "Export-EbDistributionGroups", RecipientTypeDetails=DL)
        settings = run(
            pool, "Export-EbSettings", Cmdlet=sorted({c for c, _ in summary.settings_edited})
        )
    assert changed["ok"] and settings["ok"]
    now_ids = {i["ExternalDirectoryObjectId"] for i in after["items"]}
    changed_ids = {i["ExternalDirectoryObjectId"] for i in changed["items"]}
    touched = (
        set(summary.dl_edited)
        | {g for g, _ in summary.members_added + summary.members_removed}
        | set(summary.created)
    )
    assert changed_ids == (touched - set(summary.deleted)) & now_ids
    assert not set(summary.deleted) & now_ids
    assert before - set(summary.deleted) <= now_ids
    for cmdlet, identity in summary.settings_edited:
        objects = [o for i in settings["items"] if i["cmdlet"] == cmdlet for o in i["objects"]]
        target = next(o for o in objects if o.get("Identity") == identity)
        assert target["WhenChangedUTC"] > target["WhenCreatedUTC"]
