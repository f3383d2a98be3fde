"""JSON batching (facts file §1, $batch): up to 20 requests, unique ids, each item through
the same pipeline (auth, permissions, throttling), answers in any order, dependsOn → 424."""

from __future__ import annotations

import json
import random
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from agent.simulator.graph.errors import GraphError, bad_request, error_body
from agent.simulator.graph.pipeline import Context
from agent.simulator.httpserver import Request, Response

MAX_REQUESTS = 20


def _validate(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise bad_request("Invalid batch payload format.", "BadRequest")
    items: list[dict[str, Any]] = payload["requests"]
    if not items:
        raise bad_request("Invalid batch payload format: no requests.", "BadRequest")
    if len(items) > MAX_REQUESTS:
        raise bad_request(
            f"The number of requests in the batch exceeds the limit of {MAX_REQUESTS}.",
            "BadRequest",
        )
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not {"id", "method", "url"} <= set(item):
            raise bad_request(
                "Invalid batch payload format: each request needs id, method and url.", "BadRequest"
            )
        rid = str(item["id"])
        if rid in seen:
            raise bad_request(f"Batch request contains duplicate request id '{rid}'.", "BadRequest")
        seen.add(rid)
        headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
        if item.get("body") is not None and "content-type" not in headers:
            raise bad_request(
                f"Write request id : {rid} does not contain Content-Type header or body.",
                "BadRequest",
            )
    return items


def _sub_request(outer: Request, item: dict[str, Any]) -> Request:
    url = str(item["url"])
    split = urlsplit(url)
    path = split.path
    if not path.startswith("/"):
        path = "/" + path
    if not path.startswith("/v1.0/"):
        path = "/v1.0" + path
    headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    for name in ("authorization", "client-request-id"):
        if name in outer.headers:
            headers.setdefault(name, outer.headers[name])
    body = item.get("body")
    return Request(
        method=str(item["method"]).upper(),
        path=path,
        query=parse_qs(split.query, keep_blank_values=True),
        headers=headers,
        body=json.dumps(body).encode() if body is not None else b"",
        base_url=outer.base_url,
        client=outer.client,
        raw_query=split.query,
    )


def _decoded(body: bytes) -> Any:
    """An item's JSON answer, to nest in the envelope (orjson reads what json_bytes wrote)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def batch(ctx: Context) -> Response:
    try:
        payload = ctx.request.json()
    except ValueError:
        raise bad_request("Invalid batch payload format.", "BadRequest") from None
    items = _validate(payload)
    statuses: dict[str, int] = {}
    answers: list[dict[str, Any]] = []
    total_ru = 0
    throttled = False
    audits: list[str] = []  # audited reads (BitLocker keys) stay audited inside a batch
    for item in items:
        rid = str(item["id"])
        depends = item.get("dependsOn") or []
        failed = [d for d in depends if statuses.get(str(d), 0) >= 400 or str(d) not in statuses]
        if failed:
            statuses[rid] = 424
            body = error_body(
                "FailedDependency", "Request failed because a dependency failed.", "", None
            )
            answers.append(
                {
                    "id": rid,
                    "status": 424,
                    "headers": {"Content-Type": "application/json"},
                    "body": body,
                }
            )
            continue
        response = ctx.api.handle(_sub_request(ctx.request, item), in_batch=True)
        statuses[rid] = response.status
        total_ru += int(response.note.get("ru", 0))
        throttled = throttled or bool(response.note.get("throttled"))
        if "audit" in response.note:
            audits.append(str(response.note["audit"]))
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "cache-control")
        }
        answer: dict[str, Any] = {"id": rid, "status": response.status, "headers": headers}
        if response.body:
            is_json = "json" in headers.get("Content-Type", "")
            answer["body"] = _decoded(response.body) if is_json else response.body.decode("utf-8")
        answers.append(answer)
    # Facts file §1: answers come back in any order; shuffle repeatably.
    random.Random(",".join(str(i["id"]) for i in items)).shuffle(answers)
    result = Response.json({"responses": answers})
    result.headers["x-ms-resource-unit"] = str(total_ru)
    result.note.update(
        {
            "ru": total_ru,
            "throttled": throttled,
            "batch_items": len(items),
            # what the items did: a batch of GETs reads, anything else writes
            "batch_methods": sorted({str(i["method"]).upper() for i in items}),
            "batch_paths": [str(i.get("url", "")).split("?")[0] for i in items],
        }
    )
    if audits:
        result.note["audit"] = audits
    return result


__all__ = ["GraphError", "batch"]
