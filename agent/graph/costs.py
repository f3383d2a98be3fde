"""The documented resource-unit (RU) cost of one Graph request (facts file §1).

The budget spends the estimate before sending and settles with the ``x-ms-resource-unit``
response header afterwards, so an estimate only has to be close, never exact.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

# Base costs of reads, by the last path segment that names what is read.
_RELATIONSHIP_COSTS = {
    "members": 3,  # only under groups/{id}; see _base_cost
    "transitivemembers": 5,
    "memberof": 2,
    "ownedobjects": 2,
    "transitivememberof": 2,
    "licensedetails": 2,
    "extensionproperties": 2,
}
_VERSION_SEGMENTS = {"v1.0", "beta"}


def estimate_cost(method: str, url: str) -> int:
    """RU cost of ``method url``; ``url`` is relative to the version root or absolute."""
    segments, query = _split(url)
    if any(s in ("delta", "delta()") for s in segments) or "deltatoken" in query:
        return 1  # delta queries have no listed cost
    method = method.upper()
    if method != "GET" and segments[-2:] != ["directoryobjects", "getbyids"]:
        return 1  # a write: 1 RU (plus a write unit Graph counts separately)
    cost = _base_cost(segments)
    if "select" in query:
        cost -= 1
    if "expand" in query:
        cost += 1
    top = query.get("top", "")
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(cost, 1)


def _split(url: str) -> tuple[list[str], dict[str, str]]:
    parts = urlsplit(url)
    segments = [s.lower() for s in parts.path.split("/") if s]
    if parts.scheme and segments and segments[0] in _VERSION_SEGMENTS:
        segments = segments[1:]
    # Type casts (…/members/microsoft.graph.user) do not change what is read.
    while segments and segments[-1].startswith("microsoft.graph."):
        segments.pop()
    # Graph accepts system query options with or without the '$'.
    query = {k.lower().lstrip("$"): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    return segments or [""], query


def _base_cost(segments: list[str]) -> int:
    root, last = segments[0], segments[-1]
    if segments[-2:] == ["directoryobjects", "getbyids"]:
        return 5
    if last == "members":
        return 3 if root == "groups" else 1
    if last in _RELATIONSHIP_COSTS and len(segments) > 1:
        return _RELATIONSHIP_COSTS[last]
    if root == "serviceprincipals" and last == "approleassignments":
        return 2
    if root == "oauth2permissiongrants" and len(segments) <= 2:
        return 2
    if root in ("subscribedskus", "contracts") and len(segments) <= 2:
        return 3
    if root in ("users", "applications") and len(segments) <= 2:
        return 2
    return 1
