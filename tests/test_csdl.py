"""The Graph v1.0 CSDL loader and payload validator, checked against real schema facts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent.schema.csdl import Schema, load_schema

# Shaped like the examples in Microsoft Graph's v1.0 reference (Get user, List groups,
# Get application, Get conditionalAccessPolicy), with ids and names of a fictional tenant.
USER: dict[str, Any] = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
    "@odata.type": "#microsoft.graph.user",
    "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
    "accountEnabled": True,
    "businessPhones": ["+1 425 555 0109"],
    "displayName": "Adele Vance",
    "givenName": "Adele",
    "surname": "Vance",
    "jobTitle": "Retail Manager",
    "mail": "AdeleV@contoso.com",
    "mobilePhone": None,
    "officeLocation": "18/2111",
    "preferredLanguage": "en-US",
    "userPrincipalName": "AdeleV@contoso.com",
    "createdDateTime": "2021-06-03T16:27:02Z",
    "lastPasswordChangeDateTime": "2024-01-11T08:15:30.1234567+01:00",
    "usageLocation": "US",
    "assignedLicenses": [
        {"disabledPlans": [], "skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df"},
    ],
    "identities": [
        {
            "signInType": "userPrincipalName",
            "issuer": "contoso.com",
            "issuerAssignedId": "AdeleV@contoso.com",
        }
    ],
    "onPremisesExtensionAttributes": {"extensionAttribute1": "Retail", "extensionAttribute2": None},
    "passwordPolicies": "DisablePasswordExpiration",
    "proxyAddresses": ["SMTP:AdeleV@contoso.com"],
    "extension_b7d8e648520f41d3b9c0fdeb91768a0a_jobGroupTracker": "JobGroupN",
    "manager@odata.navigationLink": "users/87d349ed-44d7-43e1-9a83-5f2406dee5bd/manager",
}

GROUP: dict[str, Any] = {
    "id": "02bd9fd6-8f93-4758-87c3-1fb73740a315",
    "deletedDateTime": None,
    "classification": None,
    "createdDateTime": "2017-07-31T18:56:16Z",
    "description": "Welcome to the HR Taskforce team.",
    "displayName": "HR Taskforce",
    "expirationDateTime": None,
    "groupTypes": ["Unified"],
    "isAssignableToRole": None,
    "mail": "HRTaskforce@contoso.com",
    "mailEnabled": True,
    "mailNickname": "HRTaskforce",
    "membershipRule": None,
    "membershipRuleProcessingState": None,
    "onPremisesLastSyncDateTime": None,
    "onPremisesSecurityIdentifier": None,
    "onPremisesSyncEnabled": None,
    "preferredDataLocation": None,
    "proxyAddresses": ["SMTP:HRTaskforce@contoso.com", "SPO:SPO_896cf652@SPO_dcd219dd"],
    "renewedDateTime": "2017-07-31T18:56:16Z",
    "resourceBehaviorOptions": [],
    "resourceProvisioningOptions": ["Team"],
    "securityEnabled": False,
    "securityIdentifier": "S-1-12-1-45981654-1196986259-3072312199-363020343",
    "theme": None,
    "visibility": "Private",
    "onPremisesProvisioningErrors": [],
}

APPLICATION: dict[str, Any] = {
    "id": "03ef14b0-ca33-4840-8f4f-d6e91916010e",
    "appId": "631a96bc-a705-4eda-9f99-fdaf9f54f6a2",
    "createdDateTime": "2019-09-17T19:10:35Z",
    "displayName": "Contoso Expenses",
    "signInAudience": "AzureADMyOrg",
    "identifierUris": ["api://631a96bc-a705-4eda-9f99-fdaf9f54f6a2"],
    "isFallbackPublicClient": None,
    "nativeAuthenticationApisEnabled": None,
    "tags": [],
    "tokenEncryptionKeyId": None,
    "api": {
        "acceptMappedClaims": None,
        "knownClientApplications": [],
        "requestedAccessTokenVersion": 2,
        "oauth2PermissionScopes": [
            {
                "adminConsentDescription": "Allow the app to read expenses.",
                "adminConsentDisplayName": "Read expenses",
                "id": "8a2c6c5a-48d8-4d9f-9d0b-6c0f1f9d2f30",
                "isEnabled": True,
                "type": "User",
                "userConsentDescription": None,
                "userConsentDisplayName": None,
                "value": "Expenses.Read",
            }
        ],
        "preAuthorizedApplications": [],
    },
    "appRoles": [],
    "keyCredentials": [
        {
            "customKeyIdentifier": "1TjRl3xYQTpLw5LaNmHx0ImzBXs=",
            "displayName": "CN=contoso-expenses",
            "endDateTime": "2026-09-17T19:00:00Z",
            "key": None,
            "keyId": "f9b4e8c0-8a0e-4a5c-9d5d-9a3c0e6f1c11",
            "startDateTime": "2024-09-17T19:00:00Z",
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
        }
    ],
    "passwordCredentials": [
        {
            "customKeyIdentifier": None,
            "displayName": "ci secret",
            "endDateTime": "2025-03-17T19:10:35.2742618Z",
            "hint": "Q~2",
            "keyId": "0e5d6f0a-2c1b-4f0e-8d1b-5c6a7b8c9d0e",
            "secretText": None,
            "startDateTime": "2024-09-17T19:10:35.2742618Z",
        }
    ],
    "requiredResourceAccess": [
        {
            "resourceAppId": "00000003-0000-0000-c000-000000000000",
            "resourceAccess": [{"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"}],
        }
    ],
    "web": {
        "homePageUrl": None,
        "logoutUrl": None,
        "redirectUris": ["https://expenses.contoso.com/signin-oidc"],
        "implicitGrantSettings": {
            "enableAccessTokenIssuance": False,
            "enableIdTokenIssuance": True,
        },
        "redirectUriSettings": [{"uri": "https://expenses.contoso.com/signin-oidc", "index": None}],
    },
    "spa": {"redirectUris": []},
    "publicClient": {"redirectUris": []},
}

CA_POLICY: dict[str, Any] = {
    "id": "6b5e999b-0ba8-4186-a106-e0296c1c4358",
    "displayName": "Require MFA for admins",
    "state": "enabledForReportingButNotEnforced",
    "createdDateTime": "2024-02-01T10:00:00Z",
    "modifiedDateTime": None,
    "conditions": {
        "clientAppTypes": ["all"],
        "signInRiskLevels": [],
        "userRiskLevels": [],
        "applications": {"includeApplications": ["All"], "excludeApplications": []},
        "users": {
            "includeRoles": ["62e90394-69f5-4237-9190-012177145e10"],
            "excludeUsers": [],
        },
    },
    "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    "sessionControls": None,
}


@pytest.fixture(scope="module")
def schema() -> Schema:
    return load_schema()


def _with(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    changed.update(changes)
    return changed


def test_lookups_accept_short_alias_and_qualified_names(schema: Schema) -> None:
    assert schema.entity("user") is schema.entity("microsoft.graph.user")
    assert schema.entity("graph.user") is schema.entity("#microsoft.graph.user")
    # microsoft.graph.security has its own "user": only its qualified name reaches it.
    assert schema.entity("microsoft.graph.security.user") is not schema.entity("user")
    assert schema.complex("assignedLicense").name == "microsoft.graph.assignedLicense"
    assert (
        "enabledForReportingButNotEnforced" in schema.enum("conditionalAccessPolicyState").members
    )
    with pytest.raises(KeyError):
        schema.entity("assignedLicense")  # a complex type, not an entity
    with pytest.raises(KeyError):
        schema.entity("noSuchThing")


def test_properties_include_the_base_type_chain(schema: Schema) -> None:
    props = schema.properties("user")
    assert props["id"].type == "Edm.String" and not props["id"].nullable  # from entity
    assert props["deletedDateTime"].type == "Edm.DateTimeOffset"  # from directoryObject
    assert props["assignedLicenses"].collection and not props["assignedLicenses"].nullable
    manager = props["manager"]
    assert manager.navigation and manager.type == "microsoft.graph.directoryObject"
    assert not manager.collection and not manager.contains_target
    assert props["memberOf"].navigation and props["memberOf"].collection
    assert schema.properties("group")["members"].collection


def test_computed_and_immutable_annotations_are_real_schema_facts(schema: Schema) -> None:
    # The v1.0 CSDL marks changeTrackedEntity's timestamps computed (inherited by shift) …
    assert schema.properties("changeTrackedEntity")["createdDateTime"].computed
    assert schema.properties("shift")["lastModifiedDateTime"].computed
    # … but not user.createdDateTime, and createdByAppId immutable rather than computed.
    assert not schema.properties("user")["createdDateTime"].computed
    created_by = schema.properties("application")["createdByAppId"]
    assert created_by.immutable and not created_by.computed
    assert "createdDateTime" not in schema.writable_properties("shift")
    writable = schema.writable_properties("user")
    assert {"displayName", "accountEnabled", "createdDateTime"} <= writable
    assert "id" not in writable and "manager" not in writable


def test_derived_types_are_transitive(schema: Schema) -> None:
    derived = schema.derived_types("directoryObject")
    assert {
        "microsoft.graph.user",
        "microsoft.graph.group",
        "microsoft.graph.servicePrincipal",
    } <= set(derived)
    assert "microsoft.graph.directoryObject" not in derived
    # entity → directoryObject → user: user is reached from entity too.
    assert "microsoft.graph.user" in schema.derived_types("entity")


@pytest.mark.parametrize(
    ("type_name", "payload"),
    [
        ("user", USER),
        ("group", GROUP),
        ("application", APPLICATION),
        ("conditionalAccessPolicy", CA_POLICY),
    ],
)
def test_realistic_payloads_validate_clean(
    schema: Schema, type_name: str, payload: dict[str, Any]
) -> None:
    assert schema.validate(type_name, payload) == []


@pytest.mark.parametrize(
    ("type_name", "payload", "path", "words"),
    [
        ("user", _with(USER, accountEnabled="true"), "$.accountEnabled", "true or false"),
        ("user", _with(USER, displayName=42), "$.displayName", "string"),
        ("user", _with(USER, deviceEnrollmentLimit=True), "$.deviceEnrollmentLimit", "integer"),
        ("user", _with(USER, favouriteColour="blue"), "$.favouriteColour", "no property"),
        (
            "user",
            _with(USER, createdDateTime="2021-06-03 16:27"),
            "$.createdDateTime",
            "DateTimeOffset",
        ),
        (
            "user",
            _with(USER, createdDateTime="2021-02-30T10:00:00Z"),
            "$.createdDateTime",
            "DateTimeOffset",
        ),
        ("user", _with(USER, businessPhones=None), "$.businessPhones", "null"),
        ("user", _with(USER, businessPhones="+1 425 555 0109"), "$.businessPhones", "list"),
        ("user", _with(USER, id=None), "$.id", "null"),
        (
            "user",
            _with(USER, assignedLicenses=[{"skuId": "not-a-guid", "disabledPlans": []}]),
            "$.assignedLicenses[0].skuId",
            "Guid",
        ),
        (
            "conditionalAccessPolicy",
            _with(CA_POLICY, state="on"),
            "$.state",
            "conditionalAccessPolicyState",
        ),
        (
            "conditionalAccessPolicy",
            _with(
                CA_POLICY,
                grantControls={"operator": "OR", "builtInControls": ["mfa", "fingerprint"]},
            ),
            "$.grantControls.builtInControls[1]",
            "'fingerprint'",
        ),
        (
            "application",
            _with(APPLICATION, nativeAuthenticationApisEnabled="everything"),
            "$.nativeAuthenticationApisEnabled",
            "member",
        ),
        (
            "application",
            _with(APPLICATION, api={"requestedAccessTokenVersion": 2.5}),
            "$.api.requestedAccessTokenVersion",
            "integer",
        ),
        (
            "application",
            _with(APPLICATION, keyCredentials=[{"customKeyIdentifier": "%%%"}]),
            "$.keyCredentials[0].customKeyIdentifier",
            "Binary",
        ),
        ("group", _with(GROUP, groupTypes=["Unified", None]), "$.groupTypes[1]", "null"),
    ],
)
def test_each_problem_names_the_property(
    schema: Schema, type_name: str, payload: dict[str, Any], path: str, words: str
) -> None:
    errors = schema.validate(type_name, payload)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}:"), errors
    assert words in errors[0], errors


def test_primitive_formats(schema: Schema) -> None:
    # servicePrincipal.appOwnerOrganizationId is an Edm.Guid; bookingService.defaultDuration
    # an Edm.Duration; workingHours.startTime an Edm.TimeOfDay; a Date: user birthday is not,
    # but educationTerm.startDate is.
    assert (
        schema.validate(
            "servicePrincipal", {"appOwnerOrganizationId": "F8CDEF31-A31E-4B4A-93E4-5F571E91255A"}
        )
        == []
    )
    assert schema.validate("bookingService", {"defaultDuration": "PT1H30M"}) == []
    assert schema.validate("bookingService", {"defaultDuration": "90 minutes"})
    assert schema.validate("workingHours", {"startTime": "08:00:00.0000000"}) == []
    assert schema.validate("workingHours", {"startTime": "25:00:00"})
    assert schema.validate("educationTerm", {"startDate": "2024-09-01"}) == []
    assert schema.validate("educationTerm", {"startDate": "2024-09-01T00:00:00Z"})
    # Doubles accept the JSON spellings of special values, not booleans.
    assert (
        schema.validate("geoCoordinates", {"latitude": 47.6, "longitude": "NaN", "altitude": 0})
        == []
    )
    assert schema.validate("geoCoordinates", {"latitude": True})
    # Flags enums take comma-joined members.
    assert schema.validate("application", {"nativeAuthenticationApisEnabled": "all"}) == []
    policy = {"allowedCombinations": ["password,microsoftAuthenticatorPush", "fido2"]}
    assert schema.validate("authenticationStrengthPolicy", policy) == []
    assert schema.validate(
        "authenticationStrengthPolicy", {"allowedCombinations": ["password,carrierPigeon"]}
    )


def test_derived_type_named_by_odata_type(schema: Schema) -> None:
    member = {
        "@odata.type": "#microsoft.graph.user",
        "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
        "userPrincipalName": "AdeleV@contoso.com",
    }
    # group.members is Collection(directoryObject): a user item validates as a user …
    assert schema.validate("group", {"id": "g1", "members": [member]}) == []
    # … without the cast, userPrincipalName is not a directoryObject property …
    untyped = {k: v for k, v in member.items() if k != "@odata.type"}
    errors = schema.validate("group", {"id": "g1", "members": [untyped]})
    assert errors == [
        "$.members[0].userPrincipalName: directoryObject has no property 'userPrincipalName'"
    ]
    # … and a cast to a type that is not a directoryObject is refused.
    errors = schema.validate(
        "group",
        {"id": "g1", "members": [{**member, "@odata.type": "#microsoft.graph.assignedLicense"}]},
    )
    assert errors and errors[0].startswith("$.members[0].@odata.type:")
    errors = schema.validate(
        "group", {"id": "g1", "members": [{**member, "@odata.type": "#microsoft.graph.notAType"}]}
    )
    assert errors and "not a known type" in errors[0]
    # Expanded single-valued navigation (manager) validates as an entity too.
    assert schema.validate("user", {"id": "u1", "manager": {**member, "jobTitle": 7}}) == [
        "$.manager.jobTitle: expected a string, got a number"
    ]


def test_derived_complex_type_named_by_odata_type(schema: Schema) -> None:
    # conditionalAccessPolicy.conditions.applications.applicationFilter is a plain complex
    # type; authenticationMethodsPolicy's registration enforcement uses derived complex types.
    target = {
        "@odata.type": "#microsoft.graph.authenticationMethodsRegistrationCampaignIncludeTarget",
        "id": "all_users",
        "targetType": "group",
        "targetedAuthenticationMethod": "microsoftAuthenticator",
    }
    campaign = {"includeTargets": [target], "state": "enabled", "snoozeDurationInDays": 1}
    assert schema.validate("authenticationMethodsRegistrationCampaign", campaign) == []
    target["targetType"] = "robot"
    assert schema.validate("authenticationMethodsRegistrationCampaign", campaign) == [
        "$.includeTargets[0].targetType: 'robot' is not a member of authenticationMethodTargetType"
    ]


def test_delta_annotations_are_accepted(schema: Schema) -> None:
    removed_user = {"id": "u1", "@removed": {"reason": "changed"}}
    assert schema.validate("user", removed_user) == []
    group_delta = {
        "@odata.type": "#microsoft.graph.group",
        "id": "g1",
        "displayName": "Sales",
        "members@delta": [
            {"@odata.type": "#microsoft.graph.user", "id": "u2"},
            {"@odata.type": "#microsoft.graph.user", "id": "u3", "@removed": {"reason": "deleted"}},
        ],
    }
    assert schema.validate("group", group_delta) == []


def test_open_types_accept_dynamic_values_only_where_graph_puts_them(schema: Schema) -> None:
    # customSecurityAttributeValue is an open type with no declared properties: a bag.
    user = {
        "id": "u1",
        "customSecurityAttributes": {
            "Engineering": {
                "@odata.type": "#microsoft.graph.customSecurityAttributeValue",
                "Project@odata.type": "#Collection(String)",
                "Project": ["Baker", "Cascade"],
            }
        },
    }
    assert schema.validate("user", user) == []
    # user is open too, but only directory extensions are dynamic on it.
    assert (
        schema.validate("user", {"id": "u1", "extension_0123456789abcdef0123456789abcdef_badge": 7})
        == []
    )
    assert schema.validate("user", {"id": "u1", "extension_short_badge": 7})


def test_load_schema_is_cached() -> None:
    assert load_schema() is load_schema()
