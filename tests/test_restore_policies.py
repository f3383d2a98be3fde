"""restore of every Entra policy kind through the CLI against a simulated tenant over real
HTTPS: a drill that deletes and edits conditional access policies, named locations, strengths,
app and permission grant policies, edits every tenant-wide policy and recreates a group a
policy names; dry-run; a missing write permission; a policy naming an object that stays gone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.graph import GraphClient
from agent.kinds.entra_config import POLICY_KINDS
from agent.kinds.entra_links import SP_POLICY_KINDS
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import (
    POLICY_WRITE_PERMISSIONS,
    agent_for,
    backup,
    restore,
    run,
    simulated_tenant,
    write_requests,
)
from tests.test_sim_support import session, token

POLICY_WRITES = [
    *POLICY_WRITE_PERMISSIONS,
    "Directory.ReadWrite.All",  # group lifecycle policy
    "Group.ReadWrite.All",
]
POLICIES = tuple(k.name for k in POLICY_KINDS)
# Enterprise apps' token lifetime / HRD policy links (claims mapping and token issuance links
# are SSO configuration: their restore needs a service account, tests/test_restore_sso.py).
SP_LINKS = tuple(k.name for k in SP_POLICY_KINDS if k.relation in ("tokenLifetimePolicies", "homeRealmDiscoveryPolicies"))  # fmt: skip
KINDS = ("user", "group", "servicePrincipal", *POLICIES, *SP_LINKS)
RESTORE = [x for k in ("group", *POLICIES, *SP_LINKS) for x in ("--kind", k)]
CA = "/identity/conditionalAccess"
APP_POLICIES = ("tokenLifetimePolicies", "homeRealmDiscoveryPolicies",
                "activityBasedTimeoutPolicies", "claimsMappingPolicies", "tokenIssuancePolicies")  # fmt: skip


def make_env(tmp_path: Path, writes: list[str]) -> Any:
    return simulated_tenant(
        tmp_path / "sim",
        seed=11,
        users=80,
        groups=16,
        applications=6,
        devices=0,
        graph_permissions=[*READ_PERMISSIONS, *writes],
        directory_roles=["Global Administrator"],
    )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Any, GraphClient, str]]:
    with make_env(tmp_path, POLICY_WRITES) as sim:
        config, rt = agent_for(tmp_path / "agent", sim, kinds=KINDS)
        handle = sim.tenants["contoso"]
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, handle))
        yield sim, g, str(config)
        rt.close()


def rows(g: GraphClient, path: str) -> list[dict[str, Any]]:
    return list(g.get_json(path).get("value") or [])


def strip(obj: dict[str, Any]) -> dict[str, Any]:
    """What a restore gives back: no ids, stamps or server-side values."""
    # Read-only: Graph sets them (the report lists any that differ).
    gone = {"id", "createdDateTime", "modifiedDateTime", "lastModifiedDateTime", "@odata.context",
            "templateId", "version", "policyVersion", "isInMultiTenantOrganization"}  # fmt: skip
    out = {k: v for k, v in obj.items() if k not in gone and v is not None}  # absent = null
    for name in ("includes", "excludes", "combinationConfigurations"):
        if name in out:
            out[name] = sorted(
                json.dumps(
                    {k: v for k, v in i.items() if k != "id" and v is not None}, sort_keys=True
                )
                for i in out[name]
            )
    return json.loads(json.dumps(out, sort_keys=True))


def uses_location(policy: dict[str, Any], loc: str) -> bool:
    locs = (policy.get("conditions") or {}).get("locations") or {}
    return loc in (locs.get("includeLocations") or []) + (locs.get("excludeLocations") or [])


def groups_of(policy: dict[str, Any]) -> list[str]:
    users = (policy.get("conditions") or {}).get("users") or {}
    return (users.get("includeGroups") or []) + (users.get("excludeGroups") or [])


def test_policy_drill_restores_every_policy_kind(env) -> None:
    sim, g, config = env
    d = sim.tenants["contoso"].directory
    # A custom strength with a FIDO2 key restriction, as an administrator makes one.
    made = g.post("/policies/authenticationStrengthPolicies",
                  {"displayName": "Keys only", "allowedCombinations": ["fido2", "password,sms"]})  # fmt: skip
    g.post(f"/policies/authenticationStrengthPolicies/{made['id']}/combinationConfigurations",
           {"@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
            "appliesToCombinations": ["fido2"],
            "allowedAAGUIDs": ["cb69481e-8ff7-4039-93ec-0a2729a154a8"]})  # fmt: skip
    # Custom consent policies with condition sets, and one policy of each app policy kind.
    for n in (1, 2):
        pid = f"drill-consent-{n}"
        g.post("/policies/permissionGrantPolicies",
               {"id": pid, "displayName": f"Drill consent {n}", "description": "low risk"})  # fmt: skip
        for rel, classification in (
            ("includes", "low"),
            ("includes", "medium"),
            ("excludes", None),
        ):
            body = {"permissionType": "delegated", "permissionClassification": classification,
                    "clientApplicationsFromVerifiedPublisherOnly": rel == "includes"}  # fmt: skip
            g.post(f"/policies/permissionGrantPolicies/{pid}/{rel}",
                   {k: v for k, v in body.items() if v is not None})  # fmt: skip
    for seg in APP_POLICIES:
        g.post(f"/policies/{seg}", {"displayName": f"Drill {seg}", "isOrganizationDefault": False,
                                    "definition": ['{"Drill":{"Version":1}}']})  # fmt: skip
    snap = backup(config)
    ca = rows(g, f"{CA}/policies")
    locations = rows(g, f"{CA}/namedLocations")
    strengths = rows(g, "/policies/authenticationStrengthPolicies")
    grants = [
        {
            **p,
            **{
                rel: rows(g, f"/policies/permissionGrantPolicies/{p['id']}/{rel}")
                for rel in ("includes", "excludes")
            },
        }
        for p in rows(g, "/policies/permissionGrantPolicies")
    ]
    partners = rows(g, "/policies/crossTenantAccessPolicy/partners")
    singles = {
        path: g.get_json(path)
        for path in (
            "/policies/authenticationMethodsPolicy",
            "/policies/authorizationPolicy",
            "/policies/identitySecurityDefaultsEnforcementPolicy",
            "/policies/crossTenantAccessPolicy/default",
            "/policies/adminConsentRequestPolicy",
        )
    }
    app_policies = {seg: rows(g, f"/policies/{seg}") for seg in APP_POLICIES}
    lifecycle = rows(g, "/groupLifecyclePolicies")
    sps = [sp["id"] for sp in rows(g, "/servicePrincipals")]
    sp_links = {
        (sp, seg): sorted(x["id"] for x in rows(g, f"/servicePrincipals/{sp}/{seg}"))
        for sp in sps
        for seg in ("tokenLifetimePolicies", "homeRealmDiscoveryPolicies")
    }
    linked = {i for ids in sp_links.values() for i in ids}

    # -- damage --------------------------------------------------------------------------
    # A named location and every conditional access policy using it: deleted.
    loc = next(x for x in locations if any(uses_location(p, x["id"]) for p in ca))
    users_of_loc = [p for p in ca if uses_location(p, loc["id"])]
    for p in users_of_loc:
        g.delete(f"{CA}/policies/{p['id']}")
    g.delete(f"{CA}/namedLocations/{loc['id']}")
    # A group a remaining policy names: deleted for good (recreated with a new id).
    rest = [p for p in ca if p not in users_of_loc]
    named = next(p for p in rest if groups_of(p))
    group = groups_of(named)[0]
    d.delete_group(group, permanent=True)
    # Edits of a policy and of a location.
    edited = next(p for p in rest if p is not named)
    g.patch(f"{CA}/policies/{edited['id']}", {"state": "disabled", "displayName": "defaced"})
    other_loc = next(x for x in locations if x["id"] != loc["id"])
    g.patch(f"{CA}/namedLocations/{other_loc['id']}", {"displayName": "defaced location",
            "@odata.type": other_loc["@odata.type"]})  # fmt: skip
    # Custom strengths: one unused deleted, one edited (description and combinations).
    custom = [s for s in strengths if s["policyType"] == "custom"]
    used = {
        ((p.get("grantControls") or {}).get("authenticationStrength") or {}).get("id") for p in ca
    }
    unused = [s for s in custom if s["id"] not in used]
    assert unused and len(custom) >= 2
    g.delete(f"/policies/authenticationStrengthPolicies/{unused[0]['id']}")
    touched = next(s for s in custom if s is not unused[0])
    g.patch(f"/policies/authenticationStrengthPolicies/{touched['id']}", {"description": "x"})
    g.post(f"/policies/authenticationStrengthPolicies/{touched['id']}/updateAllowedCombinations",
           {"allowedCombinations": ["password,sms"]})  # fmt: skip
    # Permission grant policies: a custom one deleted, another's condition set removed.
    own = [p for p in grants if not p["id"].startswith("microsoft-")]
    assert own
    g.delete(f"/policies/permissionGrantPolicies/{own[0]['id']}")
    for p in own[1:2]:
        for c in rows(g, f"/policies/permissionGrantPolicies/{p['id']}/includes")[:1]:
            g.delete(f"/policies/permissionGrantPolicies/{p['id']}/includes/{c['id']}")
        g.patch(f"/policies/permissionGrantPolicies/{p['id']}", {"description": "defaced"})
    # App policies: one of each kind deleted (one an enterprise app links to, where any is).
    for seg, items in app_policies.items():
        gone = next((x for x in items if x["id"] in linked), items[0] if items else None)
        if gone:
            g.delete(f"/policies/{seg}/{gone['id']}")
    # Cross-tenant partners: one deleted, one edited.
    if partners:
        g.delete(f"/policies/crossTenantAccessPolicy/partners/{partners[0]['tenantId']}")
    if len(partners) > 1:
        g.patch(f"/policies/crossTenantAccessPolicy/partners/{partners[1]['tenantId']}",
                {"isServiceProvider": not partners[1].get("isServiceProvider")})  # fmt: skip
    if lifecycle:
        g.patch(f"/groupLifecyclePolicies/{lifecycle[0]['id']}", {"groupLifetimeInDays": 31})
    # Every tenant-wide policy edited.
    methods = singles["/policies/authenticationMethodsPolicy"]
    sms = next(m for m in methods["authenticationMethodConfigurations"] if m["id"] == "Sms")
    g.patch("/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Sms",
            {"@odata.type": sms["@odata.type"],
             "state": "disabled" if sms["state"] == "enabled" else "enabled"})  # fmt: skip
    g.patch("/policies/authenticationMethodsPolicy", {"reconfirmationInDays": 7})
    auth = singles["/policies/authorizationPolicy"]
    g.patch(
        "/policies/authorizationPolicy", {"blockMsolPowerShell": not auth["blockMsolPowerShell"]}
    )
    sd = singles["/policies/identitySecurityDefaultsEnforcementPolicy"]
    g.patch(
        "/policies/identitySecurityDefaultsEnforcementPolicy", {"isEnabled": not sd["isEnabled"]}
    )
    g.patch("/policies/crossTenantAccessPolicy/default",
            {"inboundTrust": {"isMfaAccepted": True, "isCompliantDeviceAccepted": True,
                              "isHybridAzureADJoinedDeviceAccepted": True}})  # fmt: skip
    consent = singles["/policies/adminConsentRequestPolicy"]
    g.put("/policies/adminConsentRequestPolicy",
          {"isEnabled": not consent["isEnabled"], "notifyReviewers": False,
           "remindersEnabled": False, "requestDurationInDays": 7, "reviewers": []})  # fmt: skip

    # -- dry run: the plan, and not one write ---------------------------------------------
    g.get_json("/policies/adminConsentRequestPolicy")  # same connection: the PUT is logged
    mark = len(sim.log.items())
    plan = restore(config, snap, *RESTORE, "--dry-run", "--json").json()
    assert write_requests(sim, mark) == []
    actions = {(a["kind"], a["id"]): a for a in plan["plan"]["actions"]}
    assert actions[("namedLocation", loc["id"])]["action"] == "recreate"
    for p in users_of_loc:
        assert actions[("conditionalAccessPolicy", p["id"])]["action"] == "recreate"
    assert actions[("group", group)]["action"] == "recreate"
    # The policy naming the recreated group is written again with the group's new id.
    assert "conditions" in actions[("conditionalAccessPolicy", named["id"])]["properties"]
    assert actions[("authenticationStrengthPolicy", unused[0]["id"])]["action"] == "recreate"
    assert actions[("permissionGrantPolicy", own[0]["id"])]["action"] == "recreate"

    # -- restore ----------------------------------------------------------------------------
    mark = len(sim.log.items())
    report = restore(config, snap, *RESTORE, "--yes", "--json").json()
    assert report["summary"]["failed"] == 0, [
        r for r in report["results"] if r["status"] == "failed"
    ]
    # Conditional access writes kept to Graph's 1 request/s: not one was throttled. (A read
    # may meet the slot the dry-run process used a moment before: another app, same tenant.)
    writes = write_requests(sim, mark)
    assert len([w for w in writes if w.path.startswith(f"/v1.0{CA}/")]) >= 4
    assert [w for w in writes if w.status == 429] == []
    ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
    assert group in ids and loc["id"] in ids and unused[0]["id"] in ids

    def remap(value: Any) -> Any:
        text = json.dumps(value)
        for old, new in ids.items():
            text = text.replace(old, new)
        return json.loads(text)

    now_ca = {p["displayName"]: p for p in rows(g, f"{CA}/policies")}
    for p in ca:  # every policy as it was, naming the recreated group and location by new id
        assert strip(now_ca[p["displayName"]]) == strip(remap(p)), p["displayName"]
    assert ids[group] in groups_of(now_ca[named["displayName"]])
    now_locs = {x["displayName"]: x for x in rows(g, f"{CA}/namedLocations")}
    for x in locations:
        assert strip(now_locs[x["displayName"]]) == strip(x)
    now_strengths = {
        s["displayName"]: s for s in rows(g, "/policies/authenticationStrengthPolicies")
    }
    for s in strengths:
        assert strip(now_strengths[s["displayName"]]) == strip(s)
    now_grants = {p["id"]: p for p in rows(g, "/policies/permissionGrantPolicies")}
    for p in grants:
        now = dict(now_grants[p["id"]])
        for rel in ("includes", "excludes"):
            now[rel] = rows(g, f"/policies/permissionGrantPolicies/{p['id']}/{rel}")
        assert strip(now) == strip(p), p["id"]
    for seg, items in app_policies.items():
        now_items = {x["displayName"]: x for x in rows(g, f"/policies/{seg}")}
        for x in items:
            assert strip(now_items[x["displayName"]]) == strip(x)
    now_partners = {x["tenantId"]: x for x in rows(g, "/policies/crossTenantAccessPolicy/partners")}
    for x in partners:
        assert strip(now_partners[x["tenantId"]]) == strip(x)
    for x in lifecycle:
        assert strip(g.get_json(f"/groupLifecyclePolicies/{x['id']}")) == strip(x)
    for path, value in singles.items():
        assert strip(g.get_json(path)) == strip(remap(value)), path
    for (sp, seg), before in sp_links.items():  # links follow recreated policies' new ids
        now = sorted(x["id"] for x in rows(g, f"/servicePrincipals/{sp}/{seg}"))
        assert now == sorted(ids.get(i, i) for i in before), (sp, seg)

    # Whatever still differs is in the report with its reason.
    listed = {(r["kind"], r["id"]): r["not_restored"] for r in report["results"]}
    live = run("diff", str(snap), "--live", "--config", config, "--json", *RESTORE).json()
    for obj in live["objects"]:
        if obj["status"] != "changed":
            assert obj["id"] in ids or obj["id"] in ids.values(), obj
            continue
        for change in obj["changes"]:
            if any(x in json.dumps(change) for pair in ids.items() for x in pair):
                continue  # names a recreated object: same object, new id
            prop = change["path"].split("[")[0].split(".")[0]
            assert prop in listed.get((obj["kind"], obj["id"]), {}), (obj, change)
    again = restore(config, snap, *RESTORE, "--dry-run", "--json").json()
    assert [a for a in again["plan"]["actions"] if a["action"] != "skip"] == []


def test_missing_write_permission_skips_that_kind_only(tmp_path: Path) -> None:
    writes = [w for w in POLICY_WRITES if w != "Policy.ReadWrite.ConditionalAccess"]
    with make_env(tmp_path, writes) as sim:
        config, rt = agent_for(tmp_path / "agent", sim, kinds=KINDS)
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
        snap = backup(str(config))
        d = sim.tenants["contoso"].directory
        policy = rows(g, f"{CA}/policies")[0]
        with d.lock:
            d.policies.update("conditionalAccessPolicy", policy["id"], {"state": "disabled"}, "2026-01-01T00:00:00Z")  # fmt: skip
        auth = g.get_json("/policies/authorizationPolicy")
        flipped = not auth["blockMsolPowerShell"]
        with d.lock:
            d.policies.update("authorizationPolicy", None, {"blockMsolPowerShell": flipped}, "2026-01-01T00:00:00Z")  # fmt: skip
        kinds = ["--kind", "conditionalAccessPolicy", "--kind", "namedLocation",
                 "--kind", "authorizationPolicy"]  # fmt: skip
        plan = restore(str(config), snap, *kinds, "--dry-run", "--json").json()
        reasons = {
            (a["kind"], a["id"]): (a["action"], a["reason"]) for a in plan["plan"]["actions"]
        }
        assert reasons == {  # named locations: nothing to restore, so no row
            ("conditionalAccessPolicy", "*"): (
                "skip",
                "missing Policy.ReadWrite.ConditionalAccess",
            ),
            ("authorizationPolicy", auth["id"]): ("patch", ""),
        }
        mark = len(sim.log.items())
        report = restore(str(config), snap, *kinds, "--yes", "--json").json()
        statuses = {(r["kind"], r["status"], r["reason"]) for r in report["results"]}
        assert ("conditionalAccessPolicy", "skipped", "missing Policy.ReadWrite.ConditionalAccess") in statuses  # fmt: skip
        assert ("authorizationPolicy", "restored", "") in statuses
        assert [w.path for w in write_requests(sim, mark)] == ["/v1.0/policies/authorizationPolicy"]
        assert g.get_json("/policies/authorizationPolicy")["blockMsolPowerShell"] == auth["blockMsolPowerShell"]  # fmt: skip
        assert g.get_json(f"{CA}/policies/{policy['id']}")["state"] == "disabled"
        rt.close()


def test_policy_naming_a_group_that_stays_gone_is_skipped_with_the_reason(env) -> None:
    sim, g, config = env
    d = sim.tenants["contoso"].directory
    snap = backup(config)
    policy = next(p for p in rows(g, f"{CA}/policies") if groups_of(p))
    group = groups_of(policy)[0]
    g.patch(f"{CA}/policies/{policy['id']}", {"state": "disabled"})
    d.delete_group(group, permanent=True)
    g.get_json("/policies/authorizationPolicy")  # same connection: the PATCH is logged
    mark = len(sim.log.items())
    report = restore(config, snap, "--kind", "group", "--kind", "conditionalAccessPolicy",
                     "--id", policy["id"], "--yes", "--json").json()  # fmt: skip
    [result] = report["results"]
    assert result["status"] == "skipped"
    assert f"names group {group}" in result["reason"] and "gone" in result["reason"]
    assert write_requests(sim, mark) == []
    assert g.get_json(f"{CA}/policies/{policy['id']}")["state"] == "disabled"
