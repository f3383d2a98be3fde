"""Exports from the simulated Exchange over pypsrp: every settings family with realistic
defaults, distribution groups with every Exchange-only property, consistent with the Graph
directory, members, and the "changed since" filter."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest

from agent.exchange import protocol
from agent.exchange.contract import SETTINGS_GET_CMDLETS, parse_module
from agent.simulator.service import Simulator, TenantHandle, TenantSpec
from tests.exchange_helpers import Failed, open_bridge, run, settings_of

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
DL, SG = "MailUniversalDistributionGroup", "MailUniversalSecurityGroup"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_tenant(
            TenantSpec(name="fabrikam", seed=4, users=150, groups=40, distribution_groups=12)
        )
        yield simulator
        assert simulator.errors == [] and simulator.winrm.errors == []


@pytest.fixture(scope="module")
def tenant(sim: Simulator) -> TenantHandle:
    return sim.tenants["fabrikam"]


def _dates_are_iso(value: object, key: str = "") -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _dates_are_iso(v, k)
    elif isinstance(value, list):
        for v in value:
            _dates_are_iso(v, key)
    elif key.startswith("When") and value is not None:
        assert isinstance(value, str) and ISO.match(value), (key, value)


def test_every_settings_family_exports_realistic_defaults(
    sim: Simulator, tenant: TenantHandle
) -> None:
    with open_bridge(sim, tenant) as pool:
        run(pool, "Connect-EbExchange", **_connect_args(tenant), IncludeSecurityCompliance=True)
        envelope = run(pool, "Export-EbSettings", Cmdlet=sorted(SETTINGS_GET_CMDLETS))
    assert envelope["ok"], envelope["errors"]
    assert set(envelope["succeeded"]) == (
        SETTINGS_GET_CMDLETS - {"Get-TenantAllowBlockListItems"}
    ) | {f"Get-TenantAllowBlockListItems:{t}" for t in ("Sender", "Url", "FileHash", "IP")}
    assert all(isinstance(item["objects"], list) for item in envelope["items"])
    _dates_are_iso(envelope["items"])
    org = settings_of(envelope, "Get-OrganizationConfig")
    assert len(org) == 1 and org[0]["Identity"] == tenant.domain
    domains = {d["DomainName"]: d for d in settings_of(envelope, "Get-AcceptedDomain")}
    assert tenant.domain in domains and domains[tenant.domain]["Default"] is True
    dkim = {d["Domain"] for d in settings_of(envelope, "Get-DkimSigningConfig")}
    assert dkim == set(domains)
    names = {p["Name"] for p in settings_of(envelope, "Get-HostedContentFilterPolicy")}
    assert "Default" in names
    assert {p["Name"] for p in settings_of(envelope, "Get-AntiPhishPolicy")} >= {
        "Office365 AntiPhish Default"
    }
    quarantine = {p["Name"] for p in settings_of(envelope, "Get-QuarantinePolicy")}
    assert {"AdminOnlyAccessPolicy", "DefaultFullAccessPolicy"} <= quarantine
    lists = {
        i["listType"] for i in envelope["items"] if i["cmdlet"] == "Get-TenantAllowBlockListItems"
    }
    assert lists == {"Sender", "Url", "FileHash", "IP"}
    # Every property Set-EbSetting may change is present on its family's objects.
    settable = parse_module(protocol.PS_DIR).tables["EbSettableByCmdlet"]
    for set_cmdlet, properties in settable.items():
        objects = settings_of(envelope, "Get-" + set_cmdlet.removeprefix("Set-"))
        if not objects:
            continue
        missing = {
            p for p in properties if p not in objects[0] and p not in ("Priority", "MakeDefault")
        }
        assert not missing, (set_cmdlet, missing)
    role_groups = {g["Name"]: g for g in settings_of(envelope, "Get-RoleGroup")}
    assert "Organization Management" in role_groups
    assignments = settings_of(envelope, "Get-ManagementRoleAssignment")
    # A role group's Roles are its assignments' roles (one assignment per role here).
    to_groups = [a for a in assignments if a["RoleAssigneeType"] == "RoleGroup"]
    assert sum(len(g["Roles"]) for g in role_groups.values()) == len(to_groups)
    assert {a["RoleAssigneeType"] for a in assignments} == {"RoleGroup", "RoleAssignmentPolicy"}


def _connect_args(tenant: TenantHandle) -> dict[str, str]:
    from agent.simulator.exchange import certificate_thumbprint

    return {
        "AppId": tenant.client_id,
        "Organization": tenant.domain,
        "CertificateThumbprint": certificate_thumbprint(tenant.app.certificates_pem[0]),
    }


def test_distribution_groups_match_the_graph_directory(
    sim: Simulator, tenant: TenantHandle
) -> None:
    properties = parse_module(protocol.PS_DIR).tables["EbDlProperties"]
    with open_bridge(sim, tenant) as pool:
        dls = run(pool, "Export-EbDistributionGroups", RecipientTypeDetails=DL, IncludeMembers=True)
        sgs = run(pool, "Export-EbDistributionGroups", RecipientTypeDetails=SG)
    assert dls["ok"] and sgs["ok"]
    directory = tenant.directory
    graph_dls = {
        g["id"]: g for g in directory.groups() if g.get("mailEnabled") and not g["groupTypes"]
    }
    exported = {i["ExternalDirectoryObjectId"]: i for i in dls["items"] + sgs["items"]}
    assert set(exported) == set(graph_dls)
    assert len(dls["items"]) >= 12  # the sizing knob tops distribution lists up
    for item in dls["items"]:
        assert list(item)[: len(properties)] == properties
        row = graph_dls[item["ExternalDirectoryObjectId"]]
        assert item["RecipientTypeDetails"] == DL and row["securityEnabled"] is False
        assert item["PrimarySmtpAddress"] == row["mail"] and item["Alias"] == row["mailNickname"]
        assert item["EmailAddresses"] == row["proxyAddresses"]
        for key in (
            "ManagedBy",
            "AcceptMessagesOnlyFrom",
            "EmailAddresses",
            "ExtensionCustomAttribute1",
        ):
            assert isinstance(item[key], list)
        assert ISO.match(item["WhenChangedUTC"])
        members = {m["ExternalDirectoryObjectId"] for m in item["Members"]}
        graph_members = {
            m
            for m in directory.members(row["id"])
            if directory.kind_of(m) == "user" or m in exported
        }
        assert members == graph_members
        assert f"Get-DistributionGroupMember:{item['Guid']}" in dls["succeeded"]
    assert all(i["RecipientTypeDetails"] == SG and i["ManagedBy"] for i in sgs["items"])
    assert any(i["ModerationEnabled"] for i in dls["items"] + sgs["items"])


def test_changed_since_returns_only_later_changes(sim: Simulator, tenant: TenantHandle) -> None:
    with open_bridge(sim, tenant) as pool:
        everything = run(pool, "Export-EbDistributionGroups", RecipientTypeDetails=DL)["items"]
        stamps = sorted(i["WhenChangedUTC"] for i in everything)
        middle = stamps[len(stamps) // 2]
        cut = dt.datetime.strptime(middle[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
        later = run(
            pool,
            "Export-EbDistributionGroups",
            RecipientTypeDetails=DL,
            ChangedSinceUtc=protocol.iso_utc(cut),
        )
    assert later["ok"]
    expected = {i["Guid"] for i in everything if i["WhenChangedUTC"][:19] > middle[:19]}
    assert {i["Guid"] for i in later["items"]} == expected
    assert 0 < len(expected) < len(everything)
    assert "Members" not in later["items"][0]


def test_groups_come_in_pages_with_a_resume_token(sim: Simulator, tenant: TenantHandle) -> None:
    with open_bridge(sim, tenant) as pool:
        whole = run(pool, "Export-EbDistributionGroups", RecipientTypeDetails=DL, PageSize=1000)
        assert whole["next"] is None and len(whole["items"]) >= 12
        pages = [run(pool, "Export-EbDistributionGroups", RecipientTypeDetails=DL, PageSize=5)]
        while pages[-1]["next"] is not None:
            token = pages[-1]["next"]
            again = run(
                pool,
                "Export-EbDistributionGroups",
                RecipientTypeDetails=DL,
                PageSize=5,
                ResumeToken=token,
                IncludeMembers=True,
            )
            # The same token gives the same page again: a retried read is safe.
            replay = run(
                pool,
                "Export-EbDistributionGroups",
                RecipientTypeDetails=DL,
                PageSize=5,
                ResumeToken=token,
                IncludeMembers=True,
            )
            assert replay == again
            pages.append(again)
        # Members are read only for the groups of the page written.
        assert "Members" not in pages[0]["items"][0] and "Members" in pages[1]["items"][0]
        assert all(len(p["items"]) == 5 for p in pages[:-1]) and 0 < len(pages[-1]["items"]) <= 5
        listed = [i["Guid"] for p in pages for i in p["items"]]
        assert listed == [i["Guid"] for i in whole["items"]]
        # A session keeps a few listings; older ones are evicted, and a token means nothing
        # in another session.
        for _ in range(4):
            run(pool, "Export-EbDistributionGroups", RecipientTypeDetails=DL, PageSize=2)
        evicted = run(
            pool, "Export-EbDistributionGroups", RecipientTypeDetails=DL, ResumeToken=token
        )
        assert evicted["failed"] == ["ResumeToken"] and evicted["items"] == []
        assert evicted["errors"][0]["category"] == "NotFound" and evicted["next"] is None
        open_one = run(pool, "Export-EbDistributionGroups", RecipientTypeDetails=DL, PageSize=2)
    with open_bridge(sim, tenant) as other:
        elsewhere = run(
            other,
            "Export-EbDistributionGroups",
            RecipientTypeDetails=DL,
            ResumeToken=open_one["next"],
        )
        assert elsewhere["failed"] == ["ResumeToken"]
        # A listing of one type does not continue as the other.
        mine = run(other, "Export-EbDistributionGroups", RecipientTypeDetails=DL, PageSize=2)
        crossed = run(
            other, "Export-EbDistributionGroups", RecipientTypeDetails=SG, ResumeToken=mine["next"]
        )
        assert crossed["failed"] == ["ResumeToken"]
        # Page size and token are validated while binding, before the function runs.
        for bad in ({"PageSize": 0}, {"PageSize": 1001}, {"ResumeToken": "x; Remove-Item *"}):
            refused = run(other, "Export-EbDistributionGroups", RecipientTypeDetails=DL, **bad)
            assert isinstance(refused, Failed), bad
            assert "ParameterArgumentValidationError" in refused.error_id, refused
