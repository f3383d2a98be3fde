"""The support list (docs/support-list.md) and permission sets, derived from the registry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent.kinds import ALL_KINDS, KindSpec

INCREMENTAL = {
    "delta": "delta",
    "full": "full read, changes stored",
    "window": "by time window from the last event archived; kept after Entra drops it",
    "audit": "only parents the directory audit log names since the last run, and new ones "
    "(read in full without AuditLog.Read.All)",
}


def minimal_permissions(kinds: Iterable[KindSpec], *, write: bool = False) -> list[str]:
    """A small set of application permissions covering every kind.

    Kinds list acceptable permissions least-privileged first; a kind already covered by a
    permission chosen for another kind adds nothing.
    """
    chosen: list[str] = []
    kinds = [k for k in kinds if k.channel == "graph"]  # others sign in to another API
    for kind in sorted(
        kinds, key=lambda k: len(k.write_permissions if write else k.read_permissions)
    ):
        if kind.opt_in:  # asked for only by tenants that turn the kind on
            continue
        groups = (
            [kind.write_permissions, kind.write_also]
            if write
            else [kind.read_permissions, kind.read_also]
        )
        for options in groups:
            if options and not any(p in chosen for p in options):
                chosen.append(options[0])
    return sorted(chosen)


def write_needs(kind: KindSpec) -> str:
    """The write permissions of a kind for people: any one of them, and one of write_also."""
    also = (
        f" and one of {', '.join(kind.write_also)}"
        if len(kind.write_also) > 1
        else "".join(f" and {p}" for p in kind.write_also)
    )
    return ", ".join(kind.write_permissions) + also


def restore_roles(kinds: Iterable[KindSpec]) -> dict[str, list[str]]:
    """Directory roles restore needs, each with the kinds that need it: for every write of a
    kind (write_roles) and to undelete one (undelete_roles). Bridge kinds' roles are in
    ``exchange_requirements``."""
    needs: dict[str, set[str]] = {}
    for kind in kinds:
        if kind.channel == "bridge" or kind.opt_in:
            continue
        for role in (*kind.write_roles, *kind.undelete_roles):
            needs.setdefault(role, set()).add(kind.name)
    return {role: sorted(names) for role, names in sorted(needs.items())}


def exchange_requirements(kinds: Iterable[KindSpec], *, write: bool = False) -> dict[str, Any]:
    """What the app needs for the bridge kinds: the Exchange API permission, the Entra role,
    or instead of the role a custom role group with these Exchange management roles."""
    bridge = [k for k in kinds if k.channel == "bridge"]
    if not bridge:
        return {}
    roles = {k.extra["exchange_read_role"] for k in bridge}
    admin_only: list[str] = []
    if write:
        for kind in bridge:
            if kind.restore and kind.extra.get("write_needs_admin"):
                # Role Management could grant the app every other role: the least-privilege
                # role group leaves it out, so restoring these needs the Entra role.
                admin_only.append(kind.name)
            elif kind.restore:
                roles |= set(kind.extra["exchange_write_role"].split(", "))
    return {
        "permission": "Office 365 Exchange Online > Exchange.ManageAsApp",
        "entra_role": "Exchange Administrator",
        "role_group_roles": sorted(roles),
        "entra_role_only": sorted(admin_only),
        # What those need instead of the Entra role: the Exchange role that writes role groups
        # and role assignments, as the built-in Organization Management role group holds it.
        "entra_role_only_exchange_role": "Role Management" if admin_only else "",
        "entra_role_only_role_group": "Organization Management" if admin_only else "",
        "licence": sorted({k.extra["licence"] for k in bridge if k.extra.get("licence")}),
    }


def render_support_list(kinds: Iterable[KindSpec] = ALL_KINDS) -> str:
    lines = [
        "# Support list",
        "",
        "Generated from the kinds registry (`agent/kinds`) by `entra-backup kinds --markdown`;",
        (
            "a test keeps it in sync. Read permission: any one of those listed is enough "
            "(least-privileged first)."
        ),
        "",
        (
            "| kind | area | what is backed up | source | incremental | restore | read "
            "permission | write permission | roles |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    from agent.restore.restorers import ready  # restore reads the kinds: import when rendering

    proven = ready()
    for k in kinds:
        restore = ", ".join(k.restore) or "-"
        restore = restore if k.name in proven else f"{restore} (planned)" if k.restore else "-"
        undelete = [f"{r} (to undelete)" for r in k.undelete_roles]
        roles = ", ".join([*sorted({*k.read_roles, *k.write_roles}), *undelete]) or "-"
        also = f" and one of {', '.join(k.read_also)}" if k.read_also else ""
        read = ", ".join(k.read_permissions) + also or (
            "service account (delegated)" if k.channel == "portal" else "-"
        )
        lines.append(
            f"| `{k.name}` ({k.title}) | {k.area.value} | {k.describes} | `{k.source}` | "
            f"{INCREMENTAL[k.incremental]} | "
            f"{restore} | {read} | "
            f"{write_needs(k) or '-'} | {roles} |"
        )
    notes = [k for k in kinds if k.notes or k.opt_in]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [
            f"- `{k.name}`: "
            + (f"opt-in per tenant (`{k.opt_in} = true`). " if k.opt_in else "")
            + k.notes
            for k in notes
        ]
    return "\n".join(lines) + "\n"
