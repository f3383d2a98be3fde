"""Writes to the tenant configuration (tenant_store.py) as Graph v1.0 does them: group settings
from templates, the organization's writable properties, company branding (text by PATCH, each
image stream by a binary PUT) and domains (add, verify by DNS TXT record, update, delete).

Bodies go through ``writes.check_body`` (CSDL types, write_rules' read-only / create-only /
required tables). On top, the rules each API page states; error texts marked UNCONFIRMED
follow the documented rule where the exact wording was not found. Callers are route handlers
(routes_tenant_writes.py); every function takes the directory lock itself.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from agent.simulator.graph.directory import Directory
from agent.simulator.graph.errors import GraphError, bad_request, not_found
from agent.simulator.graph.tenant_generate import set_image
from agent.simulator.graph.tenant_store import BRANDING_STREAMS, DEFAULT_LOCALE, TenantStore
from agent.simulator.graph.writes import check_body, conflict

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


# -- group settings ---------------------------------------------------------------------------


def _setting_values(template: dict[str, Any], given: Any, base: dict[str, str]) -> list[Any]:
    """``given`` (name/value pairs) over ``base``, checked against the template's names and
    types; names not given keep their ``base`` value (the template default on a create)."""
    if not isinstance(given, list):
        raise bad_request("Invalid value specified for property 'values' of resource 'GroupSetting'.")  # fmt: skip
    types = {v["name"]: v["type"] for v in template["values"]}
    merged = dict(base)
    for item in given:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in types:
            # Graph refuses names the template does not define.
            raise bad_request("Invalid value specified for property 'values' of resource 'GroupSetting'.")  # fmt: skip
        value = "" if item.get("value") is None else str(item["value"])
        kind = types[name]
        valid = (
            value == ""
            or (kind == "System.Boolean" and value.lower() in ("true", "false"))
            or (kind == "System.Int32" and re.fullmatch(r"-?\d+", value) is not None)
            or (kind == "System.Guid" and _GUID.match(value) is not None)
            or kind == "System.String"
        )
        if not valid:
            raise bad_request("Invalid value specified for property 'values' of resource 'GroupSetting'.")  # fmt: skip
        merged[str(name)] = value
    return [{"name": n, "value": merged.get(n, "")} for n in types]


def create_setting(d: Directory, body: dict[str, Any]) -> dict[str, Any]:
    props, _ = check_body("groupSetting", body, create=True)
    with d.lock:
        store = d.tenant_config
        template = store.setting_templates.get(str(props["templateId"]))
        if template is None:
            raise not_found(str(props["templateId"]))
        if any(s["templateId"] == template["id"] for s in store.group_settings.values()):
            # One tenant-wide setting per template (group-post-settings).
            raise conflict("templateId")
        defaults = {v["name"]: v.get("defaultValue") or "" for v in template["values"]}
        row = {
            "id": str(uuid.uuid4()),
            "displayName": template["displayName"],
            "templateId": template["id"],
            "values": _setting_values(template, props.get("values", []), defaults),
        }
        store.group_settings[row["id"]] = row
        return dict(row)


def update_setting(d: Directory, sid: str, body: dict[str, Any]) -> None:
    props, _ = check_body("groupSetting", body, create=False)
    with d.lock:
        store = d.tenant_config
        row = store.group_settings.get(sid)
        if row is None:
            raise not_found(sid)
        if "values" in props:
            template = store.setting_templates[row["templateId"]]
            current = {v["name"]: v["value"] for v in row["values"]}
            row["values"] = _setting_values(template, props["values"], current)


def delete_setting(d: Directory, sid: str) -> None:
    with d.lock:
        if d.tenant_config.group_settings.pop(sid, None) is None:
            raise not_found(sid)


# -- organization -----------------------------------------------------------------------------


def update_organization(d: Directory, oid: str, body: dict[str, Any]) -> None:
    props, _ = check_body("organization", body, create=False)
    with d.lock:
        org = d.tenant_config.organization
        if not org or org["id"].lower() != oid.lower():
            raise not_found(oid)
        org.update(props)


# -- company branding -------------------------------------------------------------------------

# Image streams take PNG or JPEG (custom CSS: text/css; favicon: also an icon), with the size
# limits on the organizationalBrandingProperties page.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg"})
STREAM_TYPES: dict[str, frozenset[str]] = {
    **{s: IMAGE_TYPES for s in BRANDING_STREAMS},
    "favicon": IMAGE_TYPES | {"image/x-icon", "image/vnd.microsoft.icon"},
    "customCSS": frozenset({"text/css"}),
}
MAX_BYTES = {"backgroundImage": 300 * 1024, "customCSS": 25 * 1024}
_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def _locale_row(store: TenantStore, locale: str) -> dict[str, Any]:
    row = store.branding.get(locale)
    if row is None:
        raise not_found(locale)
    return row


def update_branding(d: Directory, locale: str, body: dict[str, Any]) -> None:
    streams = [n for n in body if n in BRANDING_STREAMS]
    if streams:
        raise bad_request(
            f"Stream property '{streams[0]}' cannot be updated together with other data types: "
            "use PUT with the image's content type."
        )  # documented rule (organizationalbranding-update); UNCONFIRMED wording
    props, _ = check_body("brandingLocalization", body, create=False)
    with d.lock:
        _locale_row(d.tenant_config, locale).update(props)


def create_localization(d: Directory, body: dict[str, Any]) -> dict[str, Any]:
    locale = str(body.get("id") or "")
    if not locale or locale in ("0", "default"):
        raise bad_request("Property id value is required but is empty or missing.")
    props, _ = check_body("brandingLocalization", {k: v for k, v in body.items() if k != "id"}, create=True)  # fmt: skip
    with d.lock:
        store = d.tenant_config
        if locale in store.branding:
            raise conflict("id")
        row: dict[str, Any] = {
            "id": locale,
            "cdnList": [],
            **{f"{s}RelativeUrl": None for s in BRANDING_STREAMS},
        }
        row.update(props)
        store.branding[locale] = row
        return dict(row)


def delete_localization(d: Directory, locale: str) -> None:
    with d.lock:
        store = d.tenant_config
        if locale == DEFAULT_LOCALE and len(store.branding) > 1:
            raise bad_request("The default branding cannot be deleted while localizations exist.")  # fmt: skip
        if locale not in store.branding:
            raise not_found(locale)
        if store.images.get(locale):
            # organizationalbrandinglocalization-delete: images must be removed first.
            raise bad_request("All images (Stream types) must be removed before the branding is deleted.")  # fmt: skip
        del store.branding[locale]


def put_stream(d: Directory, locale: str, stream: str, content_type: str, data: bytes) -> None:
    if stream not in BRANDING_STREAMS:
        raise bad_request(f"Resource not found for the segment '{stream}'.", "BadRequest")
    media = content_type.split(";")[0].strip().lower()
    if media not in STREAM_TYPES[stream]:
        raise GraphError(
            415,
            "UnsupportedMediaType",
            f"Content type '{media or '(none)'}' is not supported for '{stream}'; allowed: "
            f"{', '.join(sorted(STREAM_TYPES[stream]))}.",
        )  # UNCONFIRMED wording
    sniffed = next((t for magic, t in _MAGIC.items() if data.startswith(magic)), None)
    if media in IMAGE_TYPES and sniffed != media.replace("image/jpg", "image/jpeg"):
        raise bad_request(f"The content of '{stream}' is not a valid {media} image.")
    if not data or len(data) > MAX_BYTES.get(stream, 100 * 1024):
        raise bad_request(f"The image for '{stream}' is empty or larger than the allowed size.")
    with d.lock:
        store = d.tenant_config
        _locale_row(store, locale)
        set_image(d, store, locale, stream, data)


# -- domains ----------------------------------------------------------------------------------

DOMAIN_SERVICES = frozenset({
    "Email", "Sharepoint", "EmailInternalRelayOnly", "OfficeCommunicationsOnline",
    "SharePointDefaultDomain", "FullRedelegation", "SharePointPublic", "OrgIdAuthentication",
    "Yammer", "Intune",
})  # fmt: skip


def txt_record(d: Directory, domain: str) -> str:
    """The TXT value Entra asks for to prove ownership of ``domain`` (stable per tenant)."""
    digest = hashlib.sha256(f"{d.tenant_id}/{domain.lower()}".encode()).hexdigest()
    return f"MS=ms{int(digest[:8], 16) % 100_000_000:08d}"


def _domain(store: TenantStore, did: str) -> dict[str, Any]:
    row = next((r for i, r in store.domains.items() if i.lower() == did.lower()), None)
    if row is None:
        raise not_found(did)
    return row


def create_domain(d: Directory, body: dict[str, Any]) -> dict[str, Any]:
    did = str(body.get("id") or "").strip().lower()
    if not re.fullmatch(r"([a-z0-9-]+\.)+[a-z]{2,}", did):
        raise bad_request("Property id value is required but is empty or missing.")
    extra = {k: v for k, v in body.items() if k != "id"}
    props, _ = check_body("domain", extra, create=True)
    with d.lock:
        store = d.tenant_config
        if any(i.lower() == did for i in store.domains):
            raise conflict("id")
        # A subdomain of a domain the tenant holds is no root, and inherits its verification.
        parent = next((r for i, r in store.domains.items() if did.endswith("." + i.lower())), None)
        row: dict[str, Any] = {
            "id": did, "authenticationType": "Managed", "availabilityStatus": None,
            "isAdminManaged": True, "isDefault": False, "isInitial": False,
            "isRoot": parent is None, "isVerified": bool(parent and parent["isVerified"]),
            "manufacturer": None, "model": None,
            "passwordNotificationWindowInDays": 14, "passwordValidityPeriodInDays": 2147483647,
            "state": None, "supportedServices": [],
        }  # fmt: skip
        row.update(props)
        store.domains[did] = row
        return dict(row)


def update_domain(d: Directory, did: str, body: dict[str, Any]) -> None:
    props, _ = check_body("domain", body, create=False)
    with d.lock:
        store = d.tenant_config
        row = _domain(store, did)
        services = props.get("supportedServices")
        if services is not None:
            unknown = sorted(set(services) - DOMAIN_SERVICES)
            if unknown:
                raise bad_request(f"Invalid value specified for property 'supportedServices': {unknown[0]}.")  # fmt: skip
        if not row["isVerified"] and (services or props.get("isDefault")):
            # An unverified domain can be neither the default nor carry services (UNCONFIRMED
            # wording; the rule is on the domain resource page).
            raise bad_request(f"Domain '{row['id']}' must be verified before it can be updated.")  # fmt: skip
        if props.get("isDefault") is False and row["isDefault"]:
            raise bad_request("The default domain cannot be unset; set another domain as default.")  # fmt: skip
        if props.get("authenticationType") == "Federated" and row["isInitial"]:
            raise bad_request("The initial domain cannot be federated.")
        if props.get("isDefault"):
            for other in store.domains.values():
                other["isDefault"] = False
        row.update(props)


def verify_domain(d: Directory, did: str) -> dict[str, Any]:
    with d.lock:
        store = d.tenant_config
        row = _domain(store, did)
        if row["isVerified"]:
            raise bad_request(f"Domain '{row['id']}' is already verified.")
        wanted = txt_record(d, row["id"])
        if wanted not in store.dns_txt.get(row["id"], []):
            raise bad_request(
                f"Domain verification failed: the TXT record {wanted} was not found in the DNS "
                f"zone of {row['id']}."
            )  # UNCONFIRMED wording
        row["isVerified"] = True
        return dict(row)


def verification_records(d: Directory, did: str) -> list[dict[str, Any]]:
    with d.lock:
        row = _domain(d.tenant_config, did)
    return [
        {
            "@odata.type": "#microsoft.graph.domainDnsTxtRecord",
            "id": f"aceff52c-06a5-447f-ac5f-256ad243cc5c-{row['id']}-txt",
            "isOptional": False,
            "label": row["id"],
            "recordType": "Txt",
            "supportedService": "Email",
            "ttl": 3600,
            "text": txt_record(d, row["id"]),
        }
    ]


def delete_domain(d: Directory, did: str) -> None:
    with d.lock:
        store = d.tenant_config
        row = _domain(store, did)
        if row["isDefault"] or row["isInitial"]:
            raise bad_request(f"Domain '{row['id']}' is the default or initial domain and cannot be deleted.")  # fmt: skip
        suffix = "@" + row["id"]
        if any(
            str(u.get("userPrincipalName", "")).lower().endswith(suffix)
            for _, u in d.scan("user", 0)
        ):
            raise bad_request(f"Domain '{row['id']}' is still used by users and cannot be deleted.")  # fmt: skip
        del store.domains[row["id"]]
