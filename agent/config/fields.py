"""Checks shared by the config sections: GUIDs, domains, https URLs, secret references
(never a literal secret), and the base model that forbids unknown keys."""

from __future__ import annotations

import re

from pydantic import (
    BaseModel,
    ConfigDict,
)
from pydantic_core import PydanticCustomError

from agent.secrets import is_secret_ref

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SECRET_FIX = (
    "Put the secret in an environment variable, a file readable only by the agent, or the OS "
    'keyring, and write its reference: "env:NAME", "file:/path" or '
    '"keyring:service/username".'
)


def invalid(problem: str, fix: str) -> PydanticCustomError:
    return PydanticCustomError("config", "{problem}", {"problem": problem, "fix": fix})


def secret_ref(value: str) -> str:
    if not is_secret_ref(value):
        # Do not echo the value: it is probably the secret itself.
        raise invalid("holds a literal value, not a secret reference", SECRET_FIX)
    return value


def https_url(value: str) -> str:
    if not re.match(r"^https://[^/\s]+(/[^\s]*)?$", value):
        raise invalid(
            f"must be an https:// URL (got '{value}')",
            'Write the service\'s https address, e.g. "https://login.microsoftonline.com".',
        )
    return value.rstrip("/")


def guid(value: str) -> str:
    if not GUID.match(value):
        raise invalid(
            f"must be a GUID (got '{value}')",
            "Copy the Application (client) ID from the app registration's overview page.",
        )
    return value


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)
