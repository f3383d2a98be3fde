"""Damage for the whole-tenant drill (tests/test_restore_drill.py), one hook per kind family.

``hook_for(spec)`` picks the hook from the restorer registry: the family's own hook when its
restorer class has one (FAMILY_HOOKS: tenant-wide singletons, the bridge families, the admin
portal, branding, domains), else the generic Graph hooks — delete objects (soft and hard where
a recycle bin exists) and edit a writable property, or remove a link. The small tables below
say what the generic hooks need per kind. A kind no hook fits gets None: the drill fails on it
(or lists it with a reason), so a newly registered kind is never silently left out.

Graph damage goes through the simulator's Graph API as an administrator would; what Graph
cannot do (a synced user deleted in AD, an Exchange admin's cmdlets, the portal's settings)
is done on the simulator's state, the tenant's side of the boundary.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.errors import AgentError
from agent.graph import GraphClient
from agent.kinds import BY_NAME, KindSpec
from agent.restore.bridge_base import module_tables
from agent.restore.restorers import deleted_kind_of, link_field, restorer_for
from agent.simulator.exchange import dl
from agent.simulator.exchange import role_assignments as exo_rbac
from agent.simulator.exchange import settings as exo
from agent.simulator.exchange import settings_restore as exo_restore
from agent.simulator.graph.tenant_generate import png
from tests.test_restore_e2e import cloud, plain_groups

Item = dict[str, Any]
CA = "/identity/conditionalAccess"
ADMIN = {"BypassSecurityGroupManagerCheck": True}


@dataclass
class Drill:
    sim: Any
    g: GraphClient
    rng: random.Random
    made: dict[str, str] = field(default_factory=dict)  # what prepare() added, by role

    @property
    def handle(self) -> Any:
        return self.sim.tenants["contoso"]

    def rows(self, path: str) -> list[Item]:
        return [o for page in self.g.pages(path) for o in page.items]


def ca_uses(d: Drill, oid: str) -> list[Item]:
    """Conditional access policies naming ``oid`` anywhere."""
    return [p for p in d.rows(f"{CA}/policies") if oid in str(p)]


# Which objects of a kind the generic hook may damage (default: any).
PICK: dict[str, Callable[[Drill, Item], bool]] = {
    # Graph refuses to delete a definition still assigned (the drill removes some assignments).
    "roleDefinition": lambda d, o: (
        not o.get("isBuiltIn")
        and not d.rows(
            f"/roleManagement/directory/roleAssignments?$filter=roleDefinitionId eq '{o['id']}'"
        )
    ),
    # Built-in strengths are Microsoft's; one a policy requires cannot be deleted.
    "authenticationStrengthPolicy": lambda d, o: (
        o["policyType"] == "custom" and not ca_uses(d, o["id"])
    ),
    "permissionGrantPolicy": lambda d, o: not o["id"].startswith("microsoft-"),
    # A location a policy names cannot be deleted (namedLocation's hook deletes such policies
    # first, see below).
    "namedLocation": lambda d, o: True,
}
# Edits the generic hook cannot guess (default: a writable string from EDITABLE).
EDIT: dict[str, Callable[[Item, random.Random], Item]] = {
    "groupSetting": lambda o, r: {"values": [{**v, "value": ""} for v in o["values"]]},
    "organization": lambda o, r: {
        "technicalNotificationMails": [f"drill{r.randrange(99)}@example.com"]
    },
    "namedLocation": lambda o, r: {"displayName": "drill", "@odata.type": o["@odata.type"]},
    "conditionalAccessPolicy": lambda o, r: {"state": "disabled", "displayName": "defaced"},
    "crossTenantAccessPartner": lambda o, r: {"isServiceProvider": not o.get("isServiceProvider")},
    "groupLifecyclePolicy": lambda o, r: {"groupLifetimeInDays": 31},
    "domain": lambda o, r: {
        "passwordNotificationWindowInDays": 30,
        "passwordValidityPeriodInDays": 90,
    },
    "servicePrincipal": lambda o, r: {
        "notes": "defaced",
        **(
            {
                "samlSingleSignOnSettings": {"relayState": "/defaced"},
                "preferredSingleSignOnMode": "password",
            }
            if o.get("preferredSingleSignOnMode") == "saml"
            else {}
        ),
    },
}
# Objects edited but never deleted: Graph cannot create them back (devices), there is one
# (the organization), or deleting it takes more than a DELETE (domains: their own hook).
NO_DELETE = {"device", "organization"}
EDITABLE = ("description", "notes", "department", "jobTitle", "displayName")


def candidates(d: Drill, spec: KindSpec) -> list[Item]:
    own = d.handle.client_id  # never the agent's own app: restore signs in with it
    pick = PICK.get(spec.name, lambda d, o: True)
    directory = d.handle.directory
    if spec.name == "group":
        ids = {o["id"] for o in plain_groups(directory)}  # read-only filter, ids only
        return [o for o in d.rows("/groups") if o["id"] in ids]
    if spec.name == "user":  # cloud users (synced ones: damage_synced_user)
        ids = {u["id"] for u in cloud(directory)}
        return [o for o in d.rows("/users") if o["id"] in ids]
    if spec.name == "servicePrincipal":  # the tenant's own apps (first-party ones: see report)
        apps = {a["appId"] for a in d.rows("/applications")} - {own}
        return [o for o in d.rows("/servicePrincipals") if o["appId"] in apps]
    return [o for o in d.rows(spec.path or "") if pick(d, o) and o.get("appId") != own]


def damage_objects(d: Drill, spec: KindSpec) -> list[str]:
    """Edit one object, delete two (the second for good where a recycle bin exists)."""
    objs = sorted(candidates(d, spec), key=lambda o: str(o.get(spec.key)))
    d.rng.shuffle(objs)
    done: list[str] = []
    writable = restorer_for(spec).writable(spec)
    for obj in objs[:1]:
        oid = obj[spec.key]
        prop = next((p for p in EDITABLE if p in writable and isinstance(obj.get(p), str)), "")
        edit = EDIT[spec.name](obj, d.rng) if spec.name in EDIT else {prop: f"drill {oid[:6]}"}
        if edit and "" not in edit:
            d.g.patch(f"{spec.path}/{oid}", edit)
            done.append(f"edit {oid} {sorted(edit)}")
    if spec.name in NO_DELETE:
        return done
    for i, obj in enumerate(objs[1:3]):
        oid = obj[spec.key]
        if spec.name == "namedLocation":  # the policies naming it go first
            for policy in ca_uses(d, oid):
                d.g.delete(f"{CA}/policies/{policy['id']}")
                done.append(f"delete conditionalAccessPolicy {policy['id']}")
        d.g.delete(f"{spec.path}/{oid}")
        if i == 1 and deleted_kind_of(spec):
            d.g.delete(f"/directory/deletedItems/{oid}")
        done.append(f"delete {oid}")
    return done


def damage_links(d: Drill, spec: KindSpec) -> list[str]:
    """Remove one link of one parent that has links."""
    parent = BY_NAME[spec.parent or ""]
    name = link_field(spec)
    parents = sorted(candidates(d, parent), key=lambda o: str(o["id"]))
    d.rng.shuffle(parents)
    restorer = restorer_for(spec)
    for p in parents:
        if restorer.cannot_relink(spec, p):
            continue
        base = f"{parent.path}/{p['id']}/{name}"
        try:
            got = d.g.get_json(base)
        except AgentError:  # no manager
            continue
        items = got.get("value", [got]) if name != "manager" else [got]
        if not items or not items[0].get("id"):
            continue
        target = d.rng.choice(items)["id"]
        if name == "manager":
            d.g.delete(f"{base}/$ref")
        elif name == "appRoleAssignedTo" or "[" in (spec.unordered or ("",))[0]:
            d.g.delete(f"{base}/{target}")
        else:
            d.g.delete(f"{base}/{target}/$ref")
        return [f"unlink {p['id']}.{name} {target}"]
    return []


def damage_synced_user(d: Drill) -> list[str]:
    """The synced user prepare() made an owner and a manager, deleted in AD: Entra Connect
    soft-deletes it; restore leaves it (and every link to it) to AD, with that reason."""
    d.handle.directory.delete_user(d.made["synced"])
    return [f"sync-delete {d.made['synced']}"]


# -- tenant-wide objects --------------------------------------------------------------------------

# Singletons whose first writable switch is not a good edit, or which Graph writes by PUT.
SINGLE_EDIT: dict[str, Callable[[Item], tuple[str, Item]]] = {
    "authenticationMethodsPolicy": lambda o: ("PATCH", {"reconfirmationInDays": 7}),
    "crossTenantAccessDefault": lambda o: (
        "PATCH",
        {
            "inboundTrust": {
                "isMfaAccepted": True,
                "isCompliantDeviceAccepted": True,
                "isHybridAzureADJoinedDeviceAccepted": True,
            }
        },
    ),
    "adminConsentRequestPolicy": lambda o: (
        "PUT",
        {
            "isEnabled": not o["isEnabled"],
            "notifyReviewers": False,
            "remindersEnabled": False,
            "requestDurationInDays": 7,
            "reviewers": [],
        },
    ),
}


def damage_singleton(d: Drill, spec: KindSpec) -> list[str]:
    """Flip the first writable switch of a tenant-wide policy (or the table's edit)."""
    obj = d.g.get_json(spec.path or "")
    if spec.name in SINGLE_EDIT:
        method, body = SINGLE_EDIT[spec.name](obj)
    else:
        flag = min(p for p in restorer_for(spec).writable(spec) if isinstance(obj.get(p), bool))
        method, body = "PATCH", {flag: not obj[flag]}
    (d.g.put if method == "PUT" else d.g.patch)(spec.path or "", body)
    done = [f"{method} {sorted(body)}"]
    if spec.name == "authenticationMethodsPolicy":  # and one method configuration
        sms = next(m for m in obj["authenticationMethodConfigurations"] if m["id"] == "Sms")
        state = "disabled" if sms["state"] == "enabled" else "enabled"
        d.g.patch(f"{spec.path}/authenticationMethodConfigurations/Sms",
                  {"@odata.type": sms["@odata.type"], "state": state})  # fmt: skip
        done.append("Sms state")
    return done


def damage_branding(d: Drill, spec: KindSpec) -> list[str]:
    base = f"/organization/{d.handle.directory.tenant_id}/branding"
    d.g.patch(base, {"signInPageText": "Defaced", "backgroundColor": "#000000"})
    d.g.put_media(f"{base}/bannerLogo", png(245, 36, (9, 9, 9)), "image/png")
    return ["default text", "bannerLogo replaced"]


def damage_domains(d: Drill, spec: KindSpec) -> list[str]:
    """Edit a verified custom domain (the default one); remove a subdomain (verified through its parent, so
    restore brings it back whole)."""
    domains = d.rows("/domains")
    custom = next(x for x in domains if x["isVerified"] and "onmicrosoft" not in x["id"] and not x["id"].startswith("mail."))  # fmt: skip
    d.g.patch(f"/domains/{custom['id']}", EDIT["domain"](custom, d.rng))
    sub = next(x["id"] for x in domains if x["id"].startswith("mail."))
    d.g.delete(f"/domains/{sub}")
    return [f"edit {custom['id']}", f"delete {sub}"]


def damage_portal(d: Drill, spec: KindSpec) -> list[str]:
    """An admin flips two switches of Groups general settings in the portal."""
    ssgm = d.handle.directory.ssgm
    for key in ("selfServiceGroupManagementEnabled", "groupsInAccessPanelEnabled"):
        ssgm[key] = not ssgm[key]
    return ["two switches flipped"]


# -- Exchange (the bridge families) -------------------------------------------------------------

RECIPIENT = {"distributionGroup": "MailUniversalDistributionGroup",
             "mailEnabledSecurityGroup": "MailUniversalSecurityGroup"}  # fmt: skip


def exchange_groups(d: Drill, kind: str) -> list[Any]:
    org = d.handle.exchange
    org.sync()
    return sorted((r for r in org.dls.values() if r.recipient_type == RECIPIENT[kind]),
                  key=lambda r: r.name)  # fmt: skip


def damage_exchange_groups(d: Drill, spec: KindSpec) -> list[str]:
    """One group's properties and owners edited, another removed (no recycle bin)."""
    org = d.handle.exchange
    with org.lock:
        records = exchange_groups(d, spec.name)
        edited, gone = records[0], records[-1]
        users = sorted(r["id"] for _, r in d.handle.directory.scan("user", 0) if r.get("mail"))
        dl.set_group(org, {"Identity": edited.guid, "MailTip": "defaced", "CustomAttribute1": "x",
                           "ManagedBy": [users[-1]], "HiddenFromAddressListsEnabled": True,
                           **ADMIN}, True, None)  # fmt: skip
        dl.remove_group(org, {"Identity": gone.guid, **ADMIN}, True, None)
    return [f"edit {edited.group_id}", f"remove {gone.group_id}"]


def damage_exchange_members(d: Drill, spec: KindSpec) -> list[str]:
    """A member swapped in a group the group hook left alone."""
    org = d.handle.exchange
    with org.lock:
        record = exchange_groups(d, spec.parent or "")[1]
        members = sorted(m["ExternalDirectoryObjectId"] for m in dl.get_members(org, {"Identity": record.guid, "ResultSize": "Unlimited"}))  # fmt: skip
        users = sorted(r["id"] for _, r in d.handle.directory.scan("user", 0) if r.get("mail"))
        wanted = [*members[1:], next(u for u in users if u not in members)]
        dl.update_members(org, {"Identity": record.guid, "Members": wanted, **ADMIN}, True, None)
    return [f"members of {record.group_id}"]


def flip(obj: Item, allowed: list[str]) -> Item | None:
    """One settable property changed: a switch flipped, else a number moved, else text."""
    for key in sorted(allowed):
        if key not in ("IsDefault", "MakeDefault") and isinstance(obj.get(key), bool):
            return {key: not obj[key]}
    for key in sorted(allowed):
        value = obj.get(key)
        if key != "Priority" and isinstance(value, int) and not isinstance(value, bool):
            return {key: value + 1}
    for key in ("Comments", "AdminDisplayName"):
        if key in allowed:
            return {key: "defaced"}
    for key in sorted(allowed):
        if isinstance(obj.get(key), list):
            return {key: [*obj[key], "defaced.example"]}
    for key in sorted(allowed):
        if isinstance(obj.get(key), str) or obj.get(key, 0) is None:
            return {key: "defaced.example"}
    return None


def damage_exchange_settings(d: Drill, spec: KindSpec) -> list[str]:
    """One object's settable property changed; for a policy family the drill's second policy
    removed with its rule (prepare() made them); a mail flow rule removed."""
    org, cmdlet = d.handle.exchange, spec.extra["cmdlet"]
    noun = cmdlet.removeprefix("Get-")
    done: list[str] = []
    with org.lock:
        if noun == "RoleGroup":  # the restore's own role group (its roles untouched)
            exo_restore.set_role_group(org, {"Identity": d.made["role_group"], "Description": "defaced"})  # fmt: skip
            return [f"describe {d.made['role_group']}"]
        objects = sorted(org.settings_of(cmdlet), key=lambda o: str(o["Identity"]))
        allowed = module_tables()["EbSettableByCmdlet"].get(f"Set-{noun}", [])
        if not allowed and objects:  # no Set- (allow/block entries): one removed
            exo.remove(org, cmdlet, objects[-1]["Identity"])
            return [f"remove {objects[-1]['Identity']}"]
        for obj in objects[:1]:
            change = flip(obj, [a for a in allowed if a != "Members"])
            if change is not None:
                exo.set_(org, noun, {"Identity": obj["Identity"], **change})
                done.append(f"set {obj['Identity']} {sorted(change)}")
        family = spec.extra.get("policy_family")
        if family:  # the drill's second policy of the family, with its rule
            row = module_tables()["EbPolicyRuleFamilies"][family]
            name = f"Drill {family} 2"
            exo.remove(org, "Get-" + row["RuleSet"].removeprefix("Set-"), f"{name} rule")
            exo.remove(org, cmdlet, name)
            done.append(f"remove {name} with its rule")
        if noun == "TransportRule" and len(objects) > 1:
            exo.remove(org, cmdlet, objects[-1]["Identity"])
            done.append(f"remove {objects[-1]['Identity']}")
    return done


def damage_role_assignments(d: Drill, spec: KindSpec) -> list[str]:
    """An administrator removes the user's assignment prepare() made, takes a role from the
    drill's role group, disables an end-user role of the default policy and removes one of
    Organization Management's roles (Microsoft's: reported, never created again). The
    restore's own role group is left alone."""
    org = d.handle.exchange
    gone = ["Drill tips", "Mail Recipients-Drill delegates", "Transport Rules-Organization Management"]  # fmt: skip
    with org.lock:
        for name in gone:
            exo_rbac.remove(org, {"Identity": name})
        policy = "MyVoiceMail-Default Role Assignment Policy"
        exo_rbac.set_(org, {"Identity": policy, "Enabled": False})
    return [*(f"remove {n}" for n in gone), f"disable {policy}"]


# -- PIM ------------------------------------------------------------------------------------------


def damage_eligibility(d: Drill, spec: KindSpec) -> list[str]:
    """An administrator removes one eligibility (schedule requests are the only way)."""
    rows = sorted(d.rows(spec.path or ""), key=lambda o: str(o["id"]))
    for row in rows[:1]:
        d.g.post("/roleManagement/directory/roleEligibilityScheduleRequests",
                 {"action": "adminRemove", "principalId": row["principalId"],
                  "roleDefinitionId": row["roleDefinitionId"],
                  "directoryScopeId": row["directoryScopeId"]})  # fmt: skip
    return [f"adminRemove {r['id']}" for r in rows[:1]]


Hook = Callable[[Drill, KindSpec], list[str]]
# By restorer class (a family registers its kinds with one restorer class).
FAMILY_HOOKS: dict[str, Hook] = {
    "Singletons": damage_singleton,
    "Branding": damage_branding,
    "Domains": damage_domains,
    "PortalSettings": damage_portal,
    "ExchangeGroups": damage_exchange_groups,
    "ExchangeGroupMembers": damage_exchange_members,
    "ExchangeSettings": damage_exchange_settings,
    "ExchangeRoleAssignments": damage_role_assignments,
    "RoleEligibility": damage_eligibility,
}


def hook_for(spec: KindSpec) -> Hook | None:
    """The damage hook of a restorable kind, or None when none fits it."""
    restorer = restorer_for(spec)
    family = FAMILY_HOOKS.get(type(restorer).__name__)
    if family is not None:
        return family
    if hasattr(restorer, "plan_kind") or spec.channel != "graph" or spec.singleton:
        return None  # a family planning itself needs its own hook
    if spec.parent:
        parent = BY_NAME[spec.parent]
        return damage_links if parent.path and "{" not in parent.path else None
    return damage_objects if spec.path and "{" not in spec.path else None


# -- before the snapshot --------------------------------------------------------------------------

APP_POLICIES = ("tokenLifetimePolicies", "homeRealmDiscoveryPolicies",
                "activityBasedTimeoutPolicies", "claimsMappingPolicies", "tokenIssuancePolicies")  # fmt: skip


def prepare(d: Drill) -> None:
    """What a small generated tenant lacks for every hook to find something to damage:
    a custom strength no policy requires, a custom consent policy with condition sets, app
    policies, federated credentials, claims mapping / token issuance links, a synced user who
    owns a group and manages someone, two Defender policies of our own (with a rule each) per
    policy family, a Teams protection rule, Exchange role assignments of our own."""
    g, directory = d.g, d.handle.directory
    d.made["role_group"] = "entra-backup restore"  # set_up_exchange_role_group() made it
    g.post("/policies/authenticationStrengthPolicies",
           {"displayName": "Keys only", "allowedCombinations": ["fido2", "password,sms"]})  # fmt: skip
    for n in (1, 2, 3):
        pid = f"drill-consent-{n}"
        g.post("/policies/permissionGrantPolicies", {"id": pid, "displayName": f"Drill {n}"})
        g.post(f"/policies/permissionGrantPolicies/{pid}/includes",
               {"permissionType": "delegated", "permissionClassification": "low"})  # fmt: skip
    for seg in APP_POLICIES:
        for n in (1, 2, 3):
            g.post(f"/policies/{seg}", {"displayName": f"Drill {seg} {n}", "isOrganizationDefault": False,
                                        "definition": ['{"Drill":{"Version":1}}']})  # fmt: skip
    groups = sorted(o["id"] for o in plain_groups(directory))
    synced = next(u["id"] for u in directory.users() if u.get("onPremisesSyncEnabled"))
    directory.add_owner(groups[0], synced)
    directory.add_member(groups[1], synced)
    directory.set_manager(next(u["id"] for u in cloud(directory)), synced)
    d.made["synced"] = synced
    own = d.handle.client_id
    apps = sorted((a for a in d.rows("/applications") if a["appId"] != own), key=lambda a: a["id"])
    sps = sorted((sp for sp in d.rows("/servicePrincipals") if sp["appId"] in {a["appId"] for a in apps}), key=lambda sp: sp["id"])  # fmt: skip
    for n, app in enumerate(apps[:3]):
        g.post(f"/applications/{app['id']}/federatedIdentityCredentials",
               {"name": f"deploy-{n}", "issuer": "https://token.actions.githubusercontent.com",
                "subject": f"repo:drill/{n}", "audiences": ["api://AzureADTokenExchange"]})  # fmt: skip
    for seg in ("claimsMappingPolicies", "tokenIssuancePolicies"):
        policy = next(p for p in d.rows(f"/policies/{seg}") if p["displayName"].startswith("Drill"))
        for sp in sps[:3]:
            if not d.rows(f"/servicePrincipals/{sp['id']}/{seg}"):
                g.post(f"/servicePrincipals/{sp['id']}/{seg}/$ref",
                       {"@odata.id": f"https://graph.microsoft.com/v1.0/policies/{seg}/{policy['id']}"})  # fmt: skip
    # Two Defender policies of our own with a rule each, per policy family.
    org = d.handle.exchange
    with org.lock:
        for family, row in module_tables()["EbPolicyRuleFamilies"].items():
            for n in (1, 2):
                name = f"Drill {family} {n}"
                exo.new_policy(org, row["Policy"].removeprefix("New-"), {"Name": name})
                exo.new_rule(org, row["Rule"].removeprefix("New-"),
                             {"Name": f"{name} rule", row["RulePolicyParameter"]: name, "Priority": 0})  # fmt: skip
        # Delegation beyond the built-in role groups: a custom role group with a scoped role,
        # an assignment to a user.
        exo_rbac.new_role_group(org, {"Name": "Drill delegates", "Roles": ["Mail Recipients", "Mail Tips"]})  # fmt: skip
        exo_rbac.set_(org, {"Identity": "Mail Recipients-Drill delegates", "CustomRecipientWriteScope": "Sales recipients"})  # fmt: skip
        mailbox = next(u["userPrincipalName"] for u in cloud(directory) if u.get("mail"))
        exo_rbac.new(org, {"Name": "Drill tips", "Role": "Mail Tips", "User": mailbox})
        # Teams protection has one policy and no rule until an admin scopes it.
        exo_restore.new_object(org, "TeamsProtectionPolicyRule",
                               {"Name": "Drill Teams", "TeamsProtectionPolicy": "Teams Protection Policy"})  # fmt: skip
