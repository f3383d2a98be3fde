"""The quick-start demo: a full and an incremental backup of a simulated tenant.

Starts the built-in tenant simulator in this process, points an ordinary agent config at it
(URLs, a certificate credential by file reference, its CA), and drives the same code paths as
``entra-backup backup``.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.config import load_config
from agent.db.catalog import Catalog
from agent.jobs.backup import BackupReport
from agent.kinds import known_names
from agent.runtime import Runtime
from agent.simulator.exchange.churn import churn as exchange_churn
from agent.simulator.service import READ_PERMISSIONS, Simulator, TenantSpec
from agent.store.keys import RepositoryKey
from agent.store.repository import Repository

MARKER = ".entra-backup-demo"
TENANT = "contoso"


@dataclass
class DemoResult:
    data_dir: Path
    config_path: Path
    full: BackupReport
    incremental: BackupReport
    churn: object  # the simulator's summary of what it changed
    repo_bytes_after_full: int
    repo_bytes_after_incremental: int


def agent_config_text(
    data_dir: Path,
    sim: Simulator,
    tenant: str = TENANT,
    *,
    credential: str = "certificate",
    kinds: tuple[str, ...] = ("entra",),
    exchange: dict[str, str] | None = None,
) -> str:
    """An ordinary agent config for a simulated tenant: only URLs, CA and credential refs.

    The tenant gets an [exchange] section for the simulator's bridge host; ``exchange``
    overrides its keys (values are TOML text, e.g. {"call_timeout_s": "3"})."""
    handle = sim.tenants[tenant]
    if credential == "certificate":
        cred = f'certificate = "file:{handle.certificate_path.as_posix()}"'
    else:
        secret_file = data_dir / "keys" / f"{tenant}.secret"
        secret_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret_file.touch(mode=0o600)
        secret_file.write_text(handle.client_secret)
        cred = f'client_secret = "file:{secret_file.as_posix()}"'
    kind_list = ", ".join(f'"{k}"' for k in kinds)
    account = ""
    if handle.service_account is not None:  # the tenant's service account profile
        svc = handle.service_account
        account = f"""
[tenants.{tenant}.service_account]
username = "{svc.username}"
password = "file:{svc.password_path.as_posix()}"
client_id = "{svc.client_id}"
"""
    return f"""# Written by entra-backup for a simulated tenant: an ordinary agent config.
[agent]
data_dir = "{data_dir.as_posix()}"
repository_key = "file:{(data_dir / "keys" / "repository.key").as_posix()}"
log_level = "INFO"

[tenants.{tenant}]
tenant_id = "{handle.tenant_id}"
authority_host = "{sim.base_url}"
graph_url = "{sim.base_url}"
portal_url = "{sim.base_url}"
ca_bundle = "{sim.ca_path.as_posix()}"

[tenants.{tenant}.app]
client_id = "{handle.client_id}"
{cred}
{account}
{_exchange_section(sim, tenant, exchange or {})}
[[tenants.{tenant}.scopes]]
name = "nightly"
kinds = [{kind_list}]
schedule = "0 2 * * *"
full_every_days = 7
"""


def _exchange_section(sim: Simulator, tenant: str, overrides: dict[str, str]) -> str:
    """The bridge host as an operator would configure it: URL, account, password file, CA,
    and the app's certificate thumbprint in the host's store."""
    from agent.simulator.exchange import certificate_thumbprint
    from agent.simulator.service import BRIDGE_USER

    handle = sim.tenants[tenant]
    keys = {
        "bridge_url": f'"{sim.base_url}/wsman"',
        "auth": '"basic"',
        "username": f'"{BRIDGE_USER}"',
        "password": f'"file:{sim.bridge_password_path.as_posix()}"',
        "ca_bundle": f'"{sim.ca_path.as_posix()}"',
        "organization": f'"{handle.domain}"',
        "certificate_thumbprint": f'"{certificate_thumbprint(handle.app.certificates_pem[0])}"',
        **overrides,
    }
    return f"[tenants.{tenant}.exchange]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())


def setup_agent(data_dir: Path, sim: Simulator, tenant: str = TENANT, **options: object) -> Path:
    """Write a config, a repository key, the repository and the database; return the config."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path = data_dir / "agent.toml"
    config_path.write_text(agent_config_text(data_dir, sim, tenant, **options))  # type: ignore[arg-type]
    key_path = data_dir / "keys" / "repository.key"
    key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = RepositoryKey.generate()
    key.write_key_file(key_path)
    cfg = load_config(config_path, known_kinds=known_names())
    Repository.init(Path(cfg.agent.repository), key)
    Catalog(cfg.agent.database_url).close()
    return config_path


def prepare_dir(data_dir: Path) -> None:
    """Start from an empty folder; only ever delete a folder an earlier demo made."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            from agent.errors import ConfigError

            raise ConfigError(
                f"{data_dir} exists and was not made by the demo.",
                "Pass --dir with a new or empty folder.",
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("made by entra-backup demo\n")


def run_demo(
    data_dir: Path,
    *,
    users: int = 2000,
    groups: int = 300,
    churn: float = 0.02,
    seed: int = 1,
    backup: Callable[[Runtime, str, bool], BackupReport] | None = None,
) -> DemoResult:
    """Run the demo; ``backup(rt, tenant, full)`` lets the CLI add progress bars."""
    from agent.jobs.backup import run_backup

    data_dir = data_dir.resolve()
    prepare_dir(data_dir)
    sim = Simulator(data_dir / "simulator")
    handle = sim.add_tenant(
        TenantSpec(
            name=TENANT,
            seed=seed,
            users=users,
            groups=groups,
            service_account=True,
            graph_permissions=[*READ_PERMISSIONS, "AuditLog.Read.All"],  # activity logs too
        )
    )
    sim.start()
    try:
        config_path = setup_agent(data_dir, sim, kinds=("entra", "exchange", "defender"))
        rt = Runtime(load_config(config_path, known_kinds=known_names()))

        def run(full: bool) -> BackupReport:
            if backup is not None:
                return backup(rt, TENANT, full)
            return run_backup(rt, TENANT, force_full=full)

        full = run(True)
        size_full = rt.repository.stats()[1]
        summary = handle.directory.churn(random.Random(seed + 1000), churn)
        # Exchange admins' changes too (DLs, members, settings), seen by the next backup.
        exchange_churn(handle.exchange, random.Random(seed + 2000), churn)
        time.sleep(0)  # changes are visible to the next delta round at once
        incremental = run(False)
        size_incr = rt.repository.stats()[1]
        rt.close()
        return DemoResult(data_dir, config_path, full, incremental, summary, size_full, size_incr)
    finally:
        sim.stop()
