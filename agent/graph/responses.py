"""Reading Graph's answers: a JSON body, a page of a collection, or the AgentError an error
body stands for (403 → PermissionMissing, 401 → AuthError, else GraphError with Graph's code
and request id). Also the small header and URL readers the other graph modules share."""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from agent.errors import AgentError, AuthError, GraphError, PermissionMissing
from agent.graph.write_errors import write_error

DENIED_CODES = frozenset({"authorization_requestdenied", "accessdenied", "forbidden"})
PERMISSION_FIX = (
    "Grant the app the Microsoft Graph application permission this read needs and give admin "
    "consent (Entra admin center > App registrations > API permissions)."
)


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None
    raw: dict[str, Any]  # the response without "value": @odata.context, @odata.count, …


def parse_page(data: dict[str, Any]) -> Page:
    items = data.get("value")
    raw = {k: v for k, v in data.items() if k != "value"}
    return Page(
        items=items if isinstance(items, list) else [],
        next_link=raw.get("@odata.nextLink"),
        delta_link=raw.get("@odata.deltaLink"),
        raw=raw,
    )


def read_json(response: requests.Response) -> dict[str, Any]:
    """The JSON object of a successful answer ({} for an empty body); an error status or a
    body that is not a JSON object raises the AgentError it stands for."""
    what = f"{response.request.method} {display(response.url)}"
    if response.status_code >= 400:
        raise response_error(response, what)
    if not response.content:
        return {}
    try:
        data = loads(response.content)
    except ValueError:
        raise GraphError(
            f"Graph answered {what} with a body that is not JSON.",
            "Check graph_url: it must point at Microsoft Graph, not a proxy page.",
            status=response.status_code,
        ) from None
    if not isinstance(data, dict):
        raise GraphError(
            f"Graph answered {what} with unexpected JSON.", "", status=response.status_code
        )
    return data


def loads(body: bytes) -> Any:
    """A JSON body decoded by orjson (a page of 999 users in 1/2 to 3/4 of the stdlib's
    time); what orjson refuses but the stdlib reads (a BOM, another UTF encoding, NaN, a lone
    surrogate escape) is decoded as ``response.json()`` would. Raises ValueError when it is
    not JSON. Integers are exact up to 64 bits, Graph's largest (Edm.Int64); orjson would read
    a longer one as a float, which no Graph property holds."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def response_error(response: requests.Response, what: str) -> Exception:
    """The AgentError for a failed read: PermissionMissing, AuthError or GraphError."""
    code, message, _ = error_parts(response)
    status = response.status_code
    # PIM wraps its own error in the message: {"errorCode":"PermissionScopeNotGranted",…}
    if status == 403 and (code.lower() in DENIED_CODES or "PermissionScopeNotGranted" in message):
        return PermissionMissing(
            f"Graph denied {what} (403 {code}: {message.rstrip('.')}).", PERMISSION_FIX
        )
    if status == 401:
        return AuthError(
            f"Graph rejected the access token for {what} (401 {code}: {message.rstrip('.')}).",
            "Check tenant_id and the app's credentials, and that the token is issued for "
            "Microsoft Graph.",
        )
    return graph_error(response, what)


def graph_error(response: requests.Response, what: str, detail: str = "") -> GraphError:
    code, message, request_id = error_parts(response)
    status = response.status_code
    text = f"Graph answered {what} with {status}"
    text += f" {code}: {message.rstrip('.')}" if code or message else ""
    text += f" ({detail})." if detail else "."
    fixes = {
        404: "The object may have been deleted since it was listed (run the job again), "
        "or graph_url does not point at Microsoft Graph.",
        429: "Graph kept throttling this app; run the job later or lower its concurrency.",
        400: "This is a request the agent should not send; report it with the job log.",
    }
    fix = fixes.get(status, "Retry later; if it persists, report it with the request id.")
    return GraphError(text, fix, status=status, graph_code=code, request_id=request_id)


def error_parts(response: requests.Response) -> tuple[str, str, str]:
    """(code, message, request id) of a Graph error body; blanks when absent."""
    code = message = ""
    request_id = response.headers.get("request-id", "")
    try:
        error = loads(response.content).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        message = str(error.get("message") or "")
        inner = error.get("innerError") or error.get("innererror") or {}
        if isinstance(inner, dict):
            request_id = str(inner.get("request-id") or request_id)
    return code, message, request_id


def json_or_none(response: requests.Response) -> Any:
    """The body as JSON, None when it is not (a refused write's body for write_error)."""
    try:
        return loads(response.content)
    except ValueError:
        return None


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number (Graph sends e.g. "2.128") or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def header(headers: dict[str, Any], name: str) -> str | None:
    """A header by name, case-insensitively (a $batch item's headers are a plain dict)."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def display(url: str) -> str:
    """The request path for messages: no host, no query (skip tokens are long and opaque)."""
    return urlsplit(url).path or url


def write_refusal(method: str, url: str, response: requests.Response) -> AgentError:
    """The AgentError for a refused write (write_errors.py reads Graph's body)."""
    return write_error(
        method,
        url,
        response.status_code,
        json_or_none(response),
        response.headers.get("request-id", ""),
    )
