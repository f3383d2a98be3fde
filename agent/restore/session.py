"""What one restore run knows beyond a kind's Graph writes, for the families that need it.

``run_restore`` opens a ``RestoreSession`` around its writes (``with session.active():``). A
family reads it with ``current()``: the snapshot's repository (branding images are blobs of
their own), the admin portal client and the roles of the tenant's service account (Groups
general settings, SAML SSO), and ``remark()`` to say why a property is not (yet) restored
(a re-added domain waiting for DNS verification, a SAML app's new signing certificate). The
engine adds the remarks to the outcomes after verify.

Refusals are planned, in a dry run as in a real one: a restorer may define ``check(actions,
session)``; the plan calls it with the kind's actions once they are planned and it turns those
the service account may not write into skips (or moves the properties into the action's notes)
with the reason naming the missing role — the dry run shows the same skips the real run makes,
and the kinds planned after it see them (links of a skipped object are skipped too).

How the agent learns the service account's directory roles: the ``wids`` claim of the
account's own delegated token (the token it signs in to the admin portal with). Entra puts
the template ids of the user's active directory roles there — the same claim the service
app's Global Administrator check reads from the app token — so no extra read permission or
call is needed, and a role only eligible through PIM (not activated) does not count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError
from agent.graph import GraphClient

if TYPE_CHECKING:
    from agent.config import TenantConfig
    from agent.portal import PortalClient
    from agent.store.repository import Repository

# Directory roles by name and template id (the ``wids`` claim carries template ids).
ROLES = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "Cloud Application Administrator": "158c047a-c907-4556-b7ef-446551a6b5f7",
}


@dataclass
class RestoreSession:
    graph: GraphClient
    tenant: TenantConfig
    repository: Repository  # the snapshot's blobs
    portal_factory: Callable[[], PortalClient | None] = lambda: None
    account_roles_factory: Callable[[], set[str]] = set
    # (kind, id in the tenant) → property → why it is not restored (yet)
    remarks: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    _portal: PortalClient | None = None
    _account_roles: set[str] | None = None

    def portal(self) -> PortalClient:
        if self._portal is None:
            self._portal = self.portal_factory()
        if self._portal is None:
            raise ConfigError(
                f"Tenant '{self.tenant.name}' has no service account profile for the admin portal.",
                f"Add [tenants.{self.tenant.name}.service_account] (a user without MFA).",
            )
        return self._portal

    def account_roles(self) -> set[str]:
        """Template ids of the service account's active directory roles (empty without one)."""
        if self._account_roles is None:
            self._account_roles = set(self.account_roles_factory())
        return self._account_roles

    def missing_account_role(self, *names: str) -> str:
        """Why the service account may not write what needs one of ``names`` ("" = it may;
        Global Administrator always counts: it holds every permission those roles have)."""
        account = self.tenant.service_account
        if account is None:
            return (
                f"needs a service account profile holding the {names[0]} role; tenant "
                f"'{self.tenant.name}' has none: add [tenants.{self.tenant.name}.service_account] "
                f"for a user (without MFA) who holds {names[0]}"
            )
        wanted = {ROLES[n] for n in (*names, "Global Administrator")}
        if not wanted & self.account_roles():
            return (
                f"needs the {names[0]} role for the service account {account.username}, which "
                f"it does not hold: assign {names[0]} to {account.username} (Entra admin center "
                "→ Roles and administrators)"
            )
        return ""

    def remark(self, kind: str, oid: str, prop: str, why: str) -> None:
        self.remarks.setdefault((kind, oid), {})[prop] = why

    @contextmanager
    def active(self) -> Iterator[RestoreSession]:
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)


_CURRENT: ContextVar[RestoreSession | None] = ContextVar("restore_session", default=None)


def current() -> RestoreSession:
    session = _CURRENT.get()
    if session is None:
        raise RuntimeError("no restore session is active")  # a bug: the engine opens one
    return session


def refuse(action: Any, why: str) -> None:
    """Make a planned write a skip with ``why`` (a refusal planned before any write)."""
    action.action, action.reason = "skip", why
    action.patch, action.add, action.remove = {}, [], []


def apply_remarks(outcomes: list[Any], session: RestoreSession, ids: Any) -> None:
    """What the families remarked, on the outcomes after verify (a remark makes it partial)."""
    for outcome in outcomes:
        if outcome.status in ("failed", "skipped"):
            continue
        oid = outcome.new_id or ids.get(outcome.action.object_id)
        said = session.remarks.get((outcome.action.kind, oid))
        if said:
            outcome.properties.update(said)
            outcome.status = "partial"


def open_session(conn: Any, repository: Repository) -> RestoreSession:
    """The session of one restore over ``conn`` (a TenantConnection): the admin portal and
    the service account's roles are reached only when a family asks for them."""
    from agent.auth import ServiceAccountTokenProvider
    from agent.portal import PORTAL_SCOPE, PortalClient

    tenant = conn.config
    tokens: list[ServiceAccountTokenProvider] = []

    def account() -> ServiceAccountTokenProvider:
        if not tokens:
            tokens.append(ServiceAccountTokenProvider(tenant, conn.session))
        return tokens[0]

    def portal() -> PortalClient | None:
        if tenant.service_account is None:
            return None
        return PortalClient(tenant.portal_url, conn.session, account())

    def roles() -> set[str]:
        if tenant.service_account is None:
            return set()
        return set(account().claims(PORTAL_SCOPE).get("wids") or ())

    return RestoreSession(conn.graph, tenant, repository, portal, roles)
