"""Refusals restore knows before any write, so the dry run shows what the real run refuses.

- Undeleting an object of a kind whose ``undelete_roles`` name a directory role (users and
  groups: Global Administrator, as the seed requires) needs that role in the service app's
  token (its ``wids`` claim). Without it, each such undelete is planned as a ``skip`` naming
  the role and the fix; the real run restores everything else.
- Recreating users needs ``--password-file``: a new file, in a folder the agent can write,
  that takes each recreated user's temporary password. Without one (or with one that cannot
  be created) the real run stops before its first write; the dry run lists the same stop
  (``blockers``) under its plan.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import AgentError, ConfigError
from agent.kinds import KindSpec
from agent.restore.session import ROLES

if TYPE_CHECKING:
    from agent.restore.actions import Plan, Request


def undelete_refused(spec: KindSpec, request: Request) -> str:
    """Why the service app may not undelete a ``spec`` object ("" = it may, or its roles are
    not known)."""
    held = request.app_roles
    if held is None or not spec.undelete_roles:
        return ""
    if any(ROLES.get(role) in held for role in spec.undelete_roles):
        return ""
    role = spec.undelete_roles[0]
    what = (spec.entity_type or spec.name).lower()
    return (
        f"in the recycle bin, but undeleting a {what} needs the {role} directory role, which "
        f"the service app does not hold: assign {role} to the service app (Entra admin center "
        "→ Roles and administrators) and run the restore again"
    )


def blockers(plan: Plan, password_file: Path | None) -> list[AgentError]:
    """What stops the real run before its first write (empty: nothing)."""
    recreate = plan.needs("user", "recreate")
    if not recreate:
        return []
    n = len(recreate)
    users = f"{n} user{'s' if n != 1 else ''}"
    if password_file is None:
        return [
            ConfigError(
                f"The plan recreates {users} gone for good, each with a temporary password, "
                "but no password file was named.",
                "Add --password-file PATH (a new file; it is created readable by you only).",
            )
        ]
    problem = password_file_problem(password_file)
    if problem:
        return [
            ConfigError(
                f"The plan recreates {users}, but their password file {password_file} {problem}.",
                "Name a new file in a folder you can write to with --password-file; restore "
                "never overwrites one.",
            )
        ]
    return []


def password_file_problem(path: Path) -> str:
    """Why ``path`` cannot become the new password file ("" = it can; created at apply)."""
    if path.exists() or path.is_symlink():
        return "already exists"
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return f"cannot be created: the folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot be created: the folder {folder} is not writable"
    return ""
