"""restore of the tenant configuration through the CLI against a simulated tenant over real
HTTPS: group settings (edited and deleted), the organization, company branding text and images
(byte-equal afterwards), domains (edited, and removed: re-added, then verified once its DNS
TXT record exists), dry-run without writes, and a kind the app may not write skipped by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.graph import GraphClient
from agent.simulator.graph.tenant_generate import png
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import agent_for, backup, restore, run, simulated_tenant, write_requests
from tests.test_restore_tenant_support import settled
from tests.test_sim_support import session, token

WRITES = [
    "GroupSettings.ReadWrite.All",
    "Organization.ReadWrite.All",
    "OrganizationalBranding.ReadWrite.All",
    "Domain.ReadWrite.All",
]
KINDS = ("groupSetting", "organization", "companyBranding", "domain")
UNIFIED = "62375ab9-6b52-47ed-826b-58e47e0e304b"
ORG_WRITABLE = ("marketingNotificationEmails", "privacyProfile", "technicalNotificationMails",
                "securityComplianceNotificationMails", "securityComplianceNotificationPhones")  # fmt: skip
DOMAIN_WRITABLE = ("authenticationType", "isDefault", "supportedServices",
                   "passwordNotificationWindowInDays", "passwordValidityPeriodInDays")  # fmt: skip
STREAMS = ("backgroundImage", "bannerLogo", "customCSS", "favicon", "headerLogo", "squareLogo",
           "squareLogoDark")  # fmt: skip


def kinds(*names: str) -> list[str]:
    return [x for k in names or KINDS for x in ("--kind", k)]


@pytest.fixture
def env(tmp_path: Path):
    with simulated_tenant(
        tmp_path / "sim", users=60, groups=10, graph_permissions=[*READ_PERMISSIONS, *WRITES]
    ) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        handle = sim.tenants["contoso"]
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, handle))
        yield sim, handle.directory, str(config), g
        rt.close()


def tenant_state(g: GraphClient, org: str) -> dict[str, Any]:
    """Every restorable property of the tenant configuration, as Graph serves it."""
    base = f"/organization/{org}/branding/localizations"
    branding = {}
    for loc in g.get_json(base)["value"]:
        images = {s: g.get_media(f"{base}/{loc['id']}/{s}") for s in STREAMS}
        branding[loc["id"]] = {**loc, "images": images}
    organization = g.get_json(f"/organization/{org}")
    return {
        "settings": {
            s["templateId"]: sorted((v["name"], v["value"]) for v in s["values"])
            for s in g.get_json("/groupSettings")["value"]
        },
        "organization": {p: organization.get(p) for p in ORG_WRITABLE},
        "branding": branding,
        "domains": {
            d["id"]: {p: d.get(p) for p in (*DOMAIN_WRITABLE, "isVerified")}
            for d in g.get_json("/domains")["value"]
        },
    }


def test_tenant_configuration_drill(env) -> None:
    sim, d, config, g = env
    org = d.tenant_id
    snap = backup(config)
    before = tenant_state(g, org)
    settings = {s["templateId"]: s for s in g.get_json("/groupSettings")["value"]}
    assert UNIFIED in settings and len(settings) >= 2
    other = next(s for t, s in settings.items() if t != UNIFIED)

    # Damage: a deleted and an edited setting, organization contacts, branding text and an
    # image replaced, a domain's services and password window.
    g.delete(f"/groupSettings/{settings[UNIFIED]['id']}")
    g.patch(f"/groupSettings/{other['id']}", {"values": [{**v, "value": ""} for v in other["values"]]})  # fmt: skip
    g.patch(f"/organization/{org}", {"technicalNotificationMails": ["intruder@example.com"],
                                     "privacyProfile": {"contactEmail": "x@example.com",
                                                        "statementUrl": "https://example.com/x"}})  # fmt: skip
    g.patch(f"/organization/{org}/branding", {"signInPageText": "Defaced", "backgroundColor": "#000000"})  # fmt: skip
    # A localization with its images gone (an admin in the portal; Graph deletes one only
    # once its images are removed).
    locales = [loc for loc in before["branding"] if loc != "0"]
    assert any(before["branding"][loc]["images"].values() for loc in locales)
    for loc in locales:
        d.tenant_config.branding.pop(loc)
        d.tenant_config.images.pop(loc, None)
    g.put_media(f"/organization/{org}/branding/bannerLogo", png(245, 36, (9, 9, 9)), "image/png")
    g.put_media(f"/organization/{org}/branding/squareLogo", png(64, 64, (1, 1, 1)), "image/png")
    header = png(245, 36, (5, 5, 5))  # not in the snapshot: reported, never removed
    g.put_media(f"/organization/{org}/branding/headerLogo", header, "image/png")
    d.tenant_config.organization["street"] = "2 Elsewhere Road"  # read-only in Graph
    custom = next(x for x, v in before["domains"].items() if v["isVerified"] and not v["isDefault"] and "onmicrosoft" not in x)  # fmt: skip
    g.patch(f"/domains/{custom}", {"supportedServices": ["Intune"], "passwordNotificationWindowInDays": 30})  # fmt: skip
    assert tenant_state(g, org) != before

    mark = settled(sim, g)
    plan = restore(config, snap, *kinds(), "--dry-run", "--json").json()
    assert write_requests(sim, mark) == []  # dry-run sends zero writes
    actions = {(a["kind"], a["id"]): a for a in plan["plan"]["actions"]}
    assert actions[("groupSetting", settings[UNIFIED]["id"])]["action"] == "recreate"
    assert actions[("organization", org)]["properties"] == ["privacyProfile", "technicalNotificationMails"]  # fmt: skip
    assert actions[("organization", org)]["not_written"]["street"].startswith("read-only")
    assert actions[("companyBranding", "0")]["action"] == "patch"
    assert "images" in actions[("companyBranding", "0")]["properties"]
    assert all(actions[("companyBranding", loc)]["action"] == "recreate" for loc in locales)

    mark = settled(sim, g)
    report = restore(config, snap, *kinds(), "--yes", "--json").json()
    assert report["summary"]["failed"] == 0, report["results"]
    puts = [w for w in write_requests(sim, mark) if w.method == "PUT"]
    recreated = sum(1 for loc in locales for v in before["branding"][loc]["images"].values() if v)
    assert len(puts) == 2 + recreated  # only the images that differ travel
    (organization,) = [r for r in report["results"] if r["kind"] == "organization"]
    assert organization["status"] == "partial" and "street" in organization["not_restored"]
    after = tenant_state(g, org)
    assert after["branding"]["0"]["images"].pop("headerLogo") == (header, "image/png")
    before["branding"]["0"]["images"].pop("headerLogo")
    for state in (after, before):
        state["branding"]["0"].pop("headerLogoRelativeUrl")
    assert after == before  # images byte-equal, every restorable property back
    (default,) = [r for r in report["results"] if r["kind"] == "companyBranding" and r["id"] == "0"]  # fmt: skip
    assert default["status"] == "partial"
    assert default["not_restored"]["images"].startswith("headerLogo added since the snapshot")

    # Whatever still differs is in the report, with its reason.
    listed = {(r["kind"], r["id"]): r["not_restored"] for r in report["results"]}
    ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
    live = run("diff", str(snap), "--live", "--config", config, "--json", *kinds()).json()
    for obj in live["objects"]:
        if obj["status"] != "changed":  # the recreated setting: old id removed, new id added
            assert obj["id"] in ids or obj["id"] in ids.values(), obj
            continue
        for change in obj["changes"]:
            prop = change["path"].split("[")[0].split(".")[0]
            assert prop in listed.get((obj["kind"], obj["id"]), {}), (obj, change)
    # Only the image added since remains; applying again writes nothing.
    again = restore(config, snap, *kinds(), "--dry-run", "--json").json()
    left = [(a["kind"], a["id"]) for a in again["plan"]["actions"] if a["action"] != "skip"]
    assert left == [("companyBranding", "0")]
    mark = settled(sim, g)
    restore(config, snap, *kinds(), "--yes", "--json")
    assert write_requests(sim, mark) == []


def test_a_removed_domain_is_re_added_and_verified_once_its_txt_record_exists(env) -> None:
    sim, d, config, g = env
    # A verified root domain with services (its TXT record removed after verification, as
    # admins do), and a subdomain of the verified default domain.
    gone, sub = "fabrikam-legacy.net", next(x["id"] for x in g.get_json("/domains")["value"] if x["id"].startswith("mail."))  # fmt: skip
    g.post("/domains", {"id": gone})
    d.tenant_config.dns_txt[gone] = [g.get_json(f"/domains/{gone}/verificationDnsRecords")["value"][0]["text"]]  # fmt: skip
    g.post(f"/domains/{gone}/verify")
    g.patch(f"/domains/{gone}", {"supportedServices": ["Email", "Intune"], "passwordNotificationWindowInDays": 21})  # fmt: skip
    del d.tenant_config.dns_txt[gone]
    snap = backup(config)
    domains = {x["id"]: x for x in g.get_json("/domains")["value"]}
    g.delete(f"/domains/{gone}")
    g.delete(f"/domains/{sub}")

    first = restore(config, snap, *kinds("domain"), "--yes", "--json").json()
    results = {r["id"]: r for r in first["results"]}
    # The subdomain is verified through its parent at once: restored whole.
    assert results[sub]["status"] == "restored", results[sub]
    assert {p: g.get_json(f"/domains/{sub}")[p] for p in (*DOMAIN_WRITABLE, "isRoot")} == {
        p: domains[sub][p] for p in (*DOMAIN_WRITABLE, "isRoot")
    }
    result = results[gone]
    assert result["action"] == "recreate" and result["status"] == "partial"
    txt = g.get_json(f"/domains/{gone}/verificationDnsRecords")["value"][0]["text"]
    why = result["not_restored"]["isVerified"]
    assert why.startswith("needs verification") and txt in why and "run this restore again" in why
    assert "supportedServices" in result["not_restored"]
    now = g.get_json(f"/domains/{gone}")
    assert now["isVerified"] is False and now["supportedServices"] == []  # not pretended

    # Without the record the next restore still says so; with it, the domain comes back whole.
    again = restore(config, snap, *kinds("domain"), "--yes", "--json").json()
    assert "needs verification" in again["results"][0]["not_restored"]["isVerified"]
    d.tenant_config.dns_txt[gone] = [txt]
    done = restore(config, snap, *kinds("domain"), "--yes", "--json").json()
    assert [r["status"] for r in done["results"]] == ["restored"], [
        (r["reason"], r["not_restored"]) for r in done["results"]
    ]
    now = g.get_json(f"/domains/{gone}")
    assert now["isVerified"] is True
    assert {p: now[p] for p in DOMAIN_WRITABLE} == {p: domains[gone][p] for p in DOMAIN_WRITABLE}


def test_a_kind_the_app_may_not_write_is_skipped_by_name(tmp_path: Path) -> None:
    allowed = [p for p in WRITES if p != "Organization.ReadWrite.All"]
    with simulated_tenant(tmp_path / "sim", users=60, groups=10,
                          graph_permissions=[*READ_PERMISSIONS, *allowed]) as sim:  # fmt: skip
        config, rt = agent_for(tmp_path / "agent", sim)
        handle = sim.tenants["contoso"]
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, handle))
        org = handle.directory.tenant_id
        snap = backup(str(config))
        g.patch(f"/organization/{org}/branding", {"signInPageText": "Defaced"})
        handle.directory.tenant_config.organization["technicalNotificationMails"] = ["x@example.com"]  # fmt: skip
        plan = restore(str(config), snap, *kinds("organization", "companyBranding"), "--dry-run", "--json").json()  # fmt: skip
        skipped = {a["kind"]: a["reason"] for a in plan["plan"]["actions"] if a["action"] == "skip"}
        assert skipped == {"organization": "missing Organization.ReadWrite.All"}
        mark = settled(sim, g)
        report = restore(str(config), snap, *kinds("organization", "companyBranding"), "--yes", "--json").json()  # fmt: skip
        status = {r["kind"]: (r["status"], r["reason"]) for r in report["results"]}
        assert status == {
            "organization": ("skipped", "missing Organization.ReadWrite.All"),
            "companyBranding": ("restored", ""),
        }
        assert all("/organization/" + org + "/branding" in w.path for w in write_requests(sim, mark))  # fmt: skip
        rt.close()
