"""Entra's error answers as the login endpoint gives them: the OAuth error, AADSTS code and
text, trace and correlation ids, no-cache headers."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from agent.simulator.httpserver import Request, Response

NO_CACHE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


@dataclass
class LoginError(Exception):
    """An Entra error answer: OAuth error code, HTTP status, AADSTS number and its text."""

    status: int
    error: str
    aadsts: int
    text: str


def error_response(request: Request, err: LoginError) -> Response:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = str(uuid.uuid4())
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    body = {
        "error": err.error,
        "error_description": f"AADSTS{err.aadsts}: {err.text} Trace ID: {trace_id} "
        f"Correlation ID: {correlation_id} Timestamp: {now}",
        "error_codes": [err.aadsts],
        "timestamp": now,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={err.aadsts}",
    }
    response = Response.json(
        body, err.status, {"Content-Type": "application/json; charset=utf-8", **NO_CACHE}
    )
    response.note["aadsts"] = err.aadsts
    return response


def unknown_tenant(segment: str, error: str = "invalid_request") -> LoginError:
    return LoginError(
        400,
        error,
        90002,
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, this "
        "may happen if there are no active subscriptions for the tenant.",
    )


def missing_credential() -> LoginError:
    """A confidential client that sent neither a secret nor an assertion."""
    return LoginError(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
    )
