"""restore of what needs the tenant's service account, through the CLI against a simulated
tenant over real HTTPS: SAML apps' SSO configuration (settings, active signing certificate,
claims mapping, SAML claims; a recreated SAML app gets a new certificate and the report says
the IdP metadata changed) with Application Administrator, and Groups general settings through
the admin portal with Cloud Application Administrator — without its role, the plan (dry run
included) skips what needs it with the reason, and nothing of it is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.auth import ServiceAccountTokenProvider
from agent.errors import PermissionMissing
from agent.graph import GraphClient
from agent.http import make_session
from agent.portal import PortalClient
from agent.simulator.graph.churn_objects import delete_application
from agent.simulator.service import READ_PERMISSIONS, Simulator
from tests.agent_helpers import (
    agent_for,
    assert_differences_reported,
    backup,
    restore,
    simulated_tenant,
    write_requests,
)
from tests.test_restore_tenant_support import settled
from tests.test_sim_support import session, token

WRITES = ["Application.ReadWrite.All", "Policy.ReadWrite.ApplicationConfiguration"]
SSO_KINDS = ("application", "servicePrincipal", "servicePrincipalClaimsMappingPolicy",
             "servicePrincipalTokenIssuancePolicy")  # fmt: skip
ISSUANCE = "tokenIssuancePolicies"
SP_SSO = ("preferredSingleSignOnMode", "samlSingleSignOnSettings", "preferredTokenSigningKeyThumbprint")  # fmt: skip
SAML_CLAIMS = {"accessToken": [], "idToken": [], "saml2Token": [
    {"additionalProperties": [], "essential": False, "name": "groups", "source": None}]}  # fmt: skip
CLAIMS = "claimsMappingPolicies"


def kinds(names: tuple[str, ...]) -> list[str]:
    return [x for k in names for x in ("--kind", k)]


def tenant(tmp_path: Path, roles: list[str]) -> Any:
    return simulated_tenant(
        tmp_path / "sim", users=60, groups=8, applications=24, service_account=True,
        service_account_roles=roles, graph_permissions=[*READ_PERMISSIONS, *WRITES],
    )  # fmt: skip


@pytest.fixture
def app_admin(tmp_path: Path) -> Iterator[tuple[Simulator, Any, str, GraphClient]]:
    with tenant(tmp_path, ["Application Administrator"]) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        handle = sim.tenants["contoso"]
        yield sim, handle.directory, str(config), GraphClient(sim.base_url, session(sim), lambda: token(sim, handle))  # fmt: skip
        rt.close()


def saml_apps(g: GraphClient) -> list[tuple[dict[str, Any], dict[str, Any], list[str]]]:
    """(application, service principal, its claims mapping policy ids) of every SAML app."""
    apps = {a["appId"]: a for a in g.get_json("/applications")["value"]}
    out = []
    for sp in g.get_json("/servicePrincipals")["value"]:
        if sp.get("preferredSingleSignOnMode") == "saml" and sp["appId"] in apps:
            links = [p["id"] for p in g.get_json(f"/servicePrincipals/{sp['id']}/{CLAIMS}")["value"]]  # fmt: skip
            out.append((apps[sp["appId"]], sp, links))
    return sorted(out, key=lambda t: -len(t[2]))  # apps with a claims policy first


def test_saml_sso_drill(app_admin) -> None:
    sim, d, config, g = app_admin
    apps = saml_apps(g)
    assert len(apps) >= 2 and apps[0][2], "the tenant needs SAML apps with claims policies"
    (app, sp, links), (gone_app, gone_sp, gone_links) = apps[0], apps[1]
    g.patch(f"/applications/{app['id']}", {"optionalClaims": SAML_CLAIMS})
    snap = backup(config)
    sp = g.get_json(f"/servicePrincipals/{sp['id']}")

    # Damage: SSO mode and SAML settings, the active certificate switched, the claims policy
    # unlinked, the SAML claims emptied; the other SAML app deleted for good.
    other = g.post(f"/servicePrincipals/{sp['id']}/addTokenSigningCertificate", {"displayName": "CN=Rogue"})  # fmt: skip
    g.patch(f"/servicePrincipals/{sp['id']}", {"samlSingleSignOnSettings": {"relayState": "/defaced"},
             "preferredSingleSignOnMode": "password", "preferredTokenSigningKeyThumbprint": other["thumbprint"]})  # fmt: skip
    g.delete(f"/servicePrincipals/{sp['id']}/{CLAIMS}/{links[0]}/$ref")
    issuing = next(s for _, s, _ in apps[2:] + apps[:1]
                   if g.get_json(f"/servicePrincipals/{s['id']}/{ISSUANCE}")["value"])  # fmt: skip
    issued = [p["id"] for p in g.get_json(f"/servicePrincipals/{issuing['id']}/{ISSUANCE}")["value"]]  # fmt: skip
    g.delete(f"/servicePrincipals/{issuing['id']}/{ISSUANCE}/{issued[0]}/$ref")
    g.patch(f"/applications/{app['id']}", {"optionalClaims": {**SAML_CLAIMS, "saml2Token": []}})
    delete_application(d, gone_app["id"], permanent=True)

    mark = settled(sim, g)
    plan = restore(config, snap, *kinds(SSO_KINDS), "--dry-run", "--json").json()
    assert write_requests(sim, mark) == []
    report = restore(config, snap, *kinds(SSO_KINDS), "--yes", "--json").json()
    assert report["summary"]["failed"] == 0, report["results"]
    assert {a["kind"] for a in plan["plan"]["actions"]} == set(SSO_KINDS)

    now = g.get_json(f"/servicePrincipals/{sp['id']}")
    assert {p: now.get(p) for p in SP_SSO} == {p: sp.get(p) for p in SP_SSO}
    assert [p["id"] for p in g.get_json(f"/servicePrincipals/{sp['id']}/{CLAIMS}")["value"]] == links  # fmt: skip
    assert g.get_json(f"/applications/{app['id']}")["optionalClaims"] == SAML_CLAIMS
    assert [p["id"] for p in g.get_json(f"/servicePrincipals/{issuing['id']}/{ISSUANCE}")["value"]] == issued  # fmt: skip

    # The recreated SAML app: same SSO settings, a new active certificate, reported.
    ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
    new_sp = g.get_json(f"/servicePrincipals/{ids[gone_sp['id']]}")
    assert new_sp["appId"] == ids[gone_app["appId"]] and ids[gone_app["id"]]
    assert new_sp["preferredSingleSignOnMode"] == "saml"
    assert new_sp["samlSingleSignOnSettings"] == gone_sp["samlSingleSignOnSettings"]
    thumb = new_sp["preferredTokenSigningKeyThumbprint"]
    assert thumb and thumb != gone_sp["preferredTokenSigningKeyThumbprint"]
    (result,) = [r for r in report["results"] if r["id"] == gone_sp["id"]]
    assert result["status"] == "partial"
    why = result["not_restored"]["preferredTokenSigningKeyThumbprint"]
    assert thumb in why and "IdP metadata changed" in why and "relying party" in why
    new_links = g.get_json(f"/servicePrincipals/{new_sp['id']}/{CLAIMS}")["value"]
    assert [p["id"] for p in new_links] == gone_links

    # Every remaining difference is listed in the report with its reason.
    assert_differences_reported(config, snap, report, *kinds(SSO_KINDS))


def test_sso_restore_without_application_administrator_skips_sso_in_dry_run_and_real_run(tmp_path: Path) -> None:  # fmt: skip
    with tenant(tmp_path, ["Cloud Application Administrator"]) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        handle = sim.tenants["contoso"]
        account = handle.service_account.username  # type: ignore[union-attr]
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, handle))
        _, sp, links = saml_apps(g)[0]
        snap = backup(str(config))
        g.patch(f"/servicePrincipals/{sp['id']}", {"samlSingleSignOnSettings": {"relayState": "/x"}, "notes": "defaced"})  # fmt: skip
        g.delete(f"/servicePrincipals/{sp['id']}/{CLAIMS}/{links[0]}/$ref")
        mark = settled(sim, g)

        # The dry run shows the refusals the real run will make, and writes nothing.
        shown = restore(str(config), snap, *kinds(SSO_KINDS), "--dry-run").out
        rows = [line for line in shown.splitlines() if "servicePrincipalClaimsMappingPoli" in line]
        assert rows and all("skip" in row for row in rows), shown
        assert "Application" in shown and "Administrator" in shown
        plan = restore(str(config), snap, *kinds(SSO_KINDS), "--dry-run", "--json").json()
        assert write_requests(sim, mark) == []
        actions = {(a["kind"], a["id"]): a for a in plan["plan"]["actions"]}
        patch = actions[("servicePrincipal", sp["id"])]
        assert patch["action"] == "patch" and patch["properties"] == ["notes"]
        why = patch["not_written"]["samlSingleSignOnSettings"]
        assert "Application Administrator" in why and account in why
        link = actions[("servicePrincipalClaimsMappingPolicy", sp["id"])]
        assert link["action"] == "skip" and "Application Administrator" in link["reason"]

        # The real run makes the same skips: only the SP's other property is written.
        report = restore(str(config), snap, *kinds(SSO_KINDS), "--yes", "--json").json()
        results = {(r["kind"], r["id"]): r for r in report["results"]}
        assert results[("servicePrincipal", sp["id"])]["status"] == "partial"
        assert account in results[("servicePrincipal", sp["id"])]["not_restored"]["samlSingleSignOnSettings"]  # fmt: skip
        assert results[("servicePrincipalClaimsMappingPolicy", sp["id"])]["status"] == "skipped"
        assert [(w.method, w.path) for w in write_requests(sim, mark)] == [("PATCH", f"/v1.0/servicePrincipals/{sp['id']}")]  # fmt: skip
        now = g.get_json(f"/servicePrincipals/{sp['id']}")
        assert now["notes"] == sp.get("notes") and now["samlSingleSignOnSettings"] == {"relayState": "/x"}  # fmt: skip
        rt.close()


def settings(d: Any) -> dict[str, Any]:
    return dict(d.ssgm)


def test_groups_general_settings_with_and_without_cloud_application_administrator(tmp_path: Path) -> None:  # fmt: skip
    for roles, allowed in ((["Cloud Application Administrator"], True), (["Application Administrator"], False)):  # fmt: skip
        folder = tmp_path / ("caa" if allowed else "aa")
        with tenant(folder, roles) as sim:
            config, rt = agent_for(folder / "agent", sim)
            d = sim.tenants["contoso"].directory
            snap = backup(str(config))
            before = settings(d)
            d.ssgm["selfServiceGroupManagementEnabled"] = not before["selfServiceGroupManagementEnabled"]  # fmt: skip
            d.ssgm["groupsInAccessPanelEnabled"] = not before["groupsInAccessPanelEnabled"]
            damaged = settings(d)
            kind = ("--kind", "groupsGeneralSettings")
            mark = settled(sim, None)
            plan = restore(str(config), snap, *kind, "--dry-run", "--json").json()
            assert write_requests(sim, mark) == []
            action = plan["plan"]["actions"][0]
            report = restore(str(config), snap, *kind, "--yes", "--json").json()
            if allowed:
                assert action["action"] == "patch" and action["properties"] == [
                    "groupsInAccessPanelEnabled", "selfServiceGroupManagementEnabled"]  # fmt: skip
                assert [r["status"] for r in report["results"]] == ["restored"]
                assert settings(d) == before
            else:  # the dry run shows the skip the real run makes; neither writes
                assert action["action"] == "skip"
                assert "Cloud Application Administrator" in action["reason"]
                assert [r["status"] for r in report["results"]] == ["skipped"]
                assert "Cloud Application Administrator" in report["results"][0]["reason"]
                assert write_requests(sim, mark) == [] and settings(d) == damaged
                # The portal itself refuses the account without the role (real-style 403).
                cfg = rt.config.tenant("contoso")
                http = make_session(Path(cfg.ca_bundle), user_agent="entra-backup-test")
                portal = PortalClient(cfg.portal_url, http, ServiceAccountTokenProvider(cfg, http))
                with pytest.raises(PermissionMissing, match="Cloud Application Administrator"):
                    portal.set_groups_general_settings(before)
                assert settings(d) == damaged
            rt.close()
