"""Tenant configuration writes through the agent's GraphClient against the simulated Graph over
real HTTPS: group settings from templates, the organization's writable properties, branding
text and binary image PUTs, domains (add, DNS verification, update) and a SAML app's signing
certificate — each write changes what a read returns, each refusal reaches the caller as a
clear AgentError."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent.errors import GraphError, PermissionMissing, WriteRejected
from agent.graph import GraphClient
from agent.simulator.graph import Directory
from agent.simulator.graph.tenant_generate import png
from agent.simulator.graph.tenant_writes import txt_record
from agent.simulator.service import READ_PERMISSIONS, Simulator, TenantHandle, TenantSpec
from tests.test_sim_support import session, token

WRITES = [
    "GroupSettings.ReadWrite.All",
    "Organization.ReadWrite.All",
    "OrganizationalBranding.ReadWrite.All",
    "Domain.ReadWrite.All",
    "Application.ReadWrite.All",
]
UNIFIED = "62375ab9-6b52-47ed-826b-58e47e0e304b"


def client(sim: Simulator, handle: TenantHandle) -> GraphClient:
    bearer = token(sim, handle)
    return GraphClient(sim.base_url, session(sim), lambda: bearer)


@pytest.fixture(scope="module")
def tenant() -> Iterator[tuple[Simulator, GraphClient, Directory, GraphClient]]:
    sim = Simulator()
    handle = sim.add_tenant(
        TenantSpec(name="northwind", seed=21, users=60, groups=12, applications=20,
                   graph_permissions=[*READ_PERMISSIONS, *WRITES])
    )  # fmt: skip
    reader = sim.add_tenant(TenantSpec(name="fabrikam", seed=3, users=20, groups=4))
    sim.faults.disable_throttling = True
    sim.start()
    try:
        yield sim, client(sim, handle), handle.directory, client(sim, reader)
        assert sim.errors == []
    finally:
        sim.stop()


def rejected(call: Any, *args: Any) -> WriteRejected:
    with pytest.raises(GraphError) as info:
        call(*args)
    return info.value  # type: ignore[return-value]  # WriteRejected when Graph names a reason


def test_group_settings_are_created_from_templates_updated_and_deleted(tenant) -> None:
    _, g, d, _ = tenant
    unified = next(s for s in g.get_json("/groupSettings")["value"] if s["templateId"] == UNIFIED)
    # One tenant-wide setting per template.
    assert rejected(g.post, "/groupSettings", {"templateId": UNIFIED}).status == 400
    g.patch(f"/groupSettings/{unified['id']}", {"values": [{"name": "EnableGroupCreation", "value": "true"}]})  # fmt: skip
    values = {v["name"]: v["value"] for v in g.get_json(f"/groupSettings/{unified['id']}")["values"]}  # fmt: skip
    assert values["EnableGroupCreation"] == "true"
    assert values["ClassificationList"] == "Public,Internal,Confidential"  # others kept
    bad = rejected(g.patch, f"/groupSettings/{unified['id']}", {"values": [{"name": "Nope", "value": "1"}]})  # fmt: skip
    assert bad.status == 400
    typed = [{"name": "EnableGroupCreation", "value": "maybe"}]
    assert rejected(g.patch, f"/groupSettings/{unified['id']}", {"values": typed}).status == 400
    assert rejected(g.patch, f"/groupSettings/{unified['id']}", {"displayName": "x"}).reason == "read_only"  # fmt: skip
    g.delete(f"/groupSettings/{unified['id']}")
    assert all(s["templateId"] != UNIFIED for s in g.get_json("/groupSettings")["value"])
    created = g.post("/groupSettings", {"templateId": UNIFIED, "values": unified["values"]})
    assert created["id"] != unified["id"] and created["displayName"] == "Group.Unified"
    assert created["values"] == unified["values"]


def test_organization_takes_only_its_writable_properties(tenant) -> None:
    _, g, d, _ = tenant
    org = d.tenant_id
    g.patch(f"/organization/{org}", {"technicalNotificationMails": ["ops@example.com"],
                                     "privacyProfile": {"contactEmail": "p@example.com",
                                                        "statementUrl": "https://example.com/p"}})  # fmt: skip
    now = g.get_json(f"/organization/{org}")
    assert now["technicalNotificationMails"] == ["ops@example.com"]
    assert now["privacyProfile"]["contactEmail"] == "p@example.com"
    for prop, value in (("displayName", "Renamed"), ("street", "Elsewhere"), ("verifiedDomains", [])):  # fmt: skip
        error = rejected(g.patch, f"/organization/{org}", {prop: value})
        assert error.reason == "read_only" and error.status == 400


def test_branding_text_by_patch_images_by_binary_put(tenant) -> None:
    _, g, d, reader = tenant
    base = f"/organization/{d.tenant_id}/branding"
    g.patch(base, {"signInPageText": "Hello again"})
    g.patch(f"{base}/localizations/fr-FR", {"signInPageText": "Bonjour"})
    assert g.get_json(f"{base}/localizations/0")["signInPageText"] == "Hello again"
    assert g.get_json(f"{base}/localizations/fr-FR")["signInPageText"] == "Bonjour"
    logo = png(245, 36, (1, 2, 3))
    before = g.get_json(f"{base}/localizations/0")["bannerLogoRelativeUrl"]
    g.put_media(f"{base}/bannerLogo", logo, "image/png")
    assert g.get_media(f"{base}/localizations/0/bannerLogo") == (logo, "image/png")
    assert g.get_json(f"{base}/localizations/0")["bannerLogoRelativeUrl"] != before
    g.put_media(f"{base}/localizations/fr-FR/squareLogo", logo, "image/png")
    assert g.get_media(f"{base}/localizations/fr-FR/squareLogo") == (logo, "image/png")
    # Streams never travel with text; content type and content must be an image.
    assert rejected(g.patch, base, {"bannerLogo": "AAAA"}).status == 400
    assert rejected(g.put_media, f"{base}/bannerLogo", logo, "text/plain").status == 415
    assert rejected(g.put_media, f"{base}/bannerLogo", b"not a png", "image/png").status == 400
    assert rejected(g.patch, base, {"bannerLogoRelativeUrl": "x"}).reason == "read_only"
    with pytest.raises(PermissionMissing):
        reader.put_media(f"/organization/{reader_org(reader)}/branding/bannerLogo", logo, "image/png")  # fmt: skip


def reader_org(g: GraphClient) -> str:
    return str(g.get_json("/organization")["value"][0]["id"])


def test_a_removed_domain_comes_back_unverified_until_its_txt_record_exists(tenant) -> None:
    _, g, d, _ = tenant
    name = "restored-example.com"
    created = g.post("/domains", {"id": name})
    assert created["isVerified"] is False and created["supportedServices"] == []
    assert rejected(g.patch, f"/domains/{name}", {"supportedServices": ["Email"]}).status == 400
    records = g.get_json(f"/domains/{name}/verificationDnsRecords")["value"]
    txt = next(r for r in records if r["recordType"] == "Txt")
    assert txt["text"] == txt_record(d, name)
    assert "TXT record" in str(rejected(g.post, f"/domains/{name}/verify"))
    d.tenant_config.dns_txt[name] = [txt["text"]]
    assert g.post(f"/domains/{name}/verify")["isVerified"] is True
    g.patch(f"/domains/{name}", {"supportedServices": ["Email", "Intune"], "isDefault": True})
    domains = {x["id"]: x for x in g.get_json("/domains")["value"]}
    assert domains[name]["isDefault"] and sum(x["isDefault"] for x in domains.values()) == 1
    assert rejected(g.patch, f"/domains/{name}", {"isVerified": False}).reason == "read_only"
    assert rejected(g.delete, f"/domains/{name}").status == 400  # the default stays


def test_a_saml_app_takes_only_the_thumbprint_of_one_of_its_signing_keys(tenant) -> None:
    _, g, d, _ = tenant
    sps = g.get_json("/servicePrincipals")["value"]
    saml = next(s for s in sps if s.get("preferredSingleSignOnMode") == "saml")
    assert saml["preferredTokenSigningKeyThumbprint"]  # names its own signing key
    g.patch(f"/servicePrincipals/{saml['id']}", {"preferredTokenSigningKeyThumbprint": saml["preferredTokenSigningKeyThumbprint"]})  # fmt: skip
    bogus = {"preferredTokenSigningKeyThumbprint": "AB" * 20}
    assert rejected(g.patch, f"/servicePrincipals/{saml['id']}", bogus).status == 400
    cert = g.post(f"/servicePrincipals/{saml['id']}/addTokenSigningCertificate",
                  {"displayName": "CN=Restored SSO"})  # fmt: skip
    assert len(cert["thumbprint"]) == 40 and cert["key"]
    g.patch(f"/servicePrincipals/{saml['id']}", {"preferredTokenSigningKeyThumbprint": cert["thumbprint"]})  # fmt: skip
    now = g.get_json(f"/servicePrincipals/{saml['id']}")
    assert now["preferredTokenSigningKeyThumbprint"] == cert["thumbprint"]
    assert {k["usage"] for k in now["keyCredentials"] if k["displayName"] == "CN=Restored SSO"} == {"Sign", "Verify"}  # fmt: skip
    assert rejected(g.post, f"/servicePrincipals/{saml['id']}/addTokenSigningCertificate", {"displayName": "x"}).status == 400  # fmt: skip
