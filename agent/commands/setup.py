"""init, permissions, kinds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from agent.commands.common import (
    ConfigOpt,
    JsonOpt,
    app,
    console,
    default_config_path,
    print_json,
    table,
)
from agent.config import load_config, render_example_config
from agent.db.catalog import Catalog
from agent.errors import SecretError
from agent.kinds import ALL_KINDS, known_names, resolve
from agent.kinds.support import (
    exchange_requirements,
    minimal_permissions,
    render_support_list,
    restore_roles,
    write_needs,
)
from agent.store.keys import RepositoryKey
from agent.store.repository import Repository


def _set_line(text: str, key: str, value: str) -> str:
    """Replace the first ``key = …`` line of the [agent] table in the example config."""
    return re.sub(rf"(?m)^{key}\s*=.*$", f'{key} = "{value}"', text, count=1)


def write_config(path: Path, data_dir: Path) -> None:
    text = render_example_config()
    text = _set_line(text, "data_dir", data_dir.as_posix())
    text = _set_line(
        text, "repository_key", f"file:{(data_dir / 'keys' / 'repository.key').as_posix()}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def create_key(ref: str) -> str:
    """Create the repository key the reference points at; say what was done."""
    key = RepositoryKey.generate()
    if ref.startswith("file:"):
        path = Path(ref[5:])
        if path.exists():
            return f"Repository key {path} exists; kept."
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key.write_key_file(path)
        return (
            f"Created repository key {path} (owner-only). Keep a copy somewhere safe: "
            "without it no backup can be read."
        )
    if ref.startswith("keyring:"):
        import keyring

        service, _, user = ref[8:].partition("/")
        if keyring.get_password(service, user):
            return f"Repository key in keyring {service}/{user} exists; kept."
        keyring.set_password(service, user, key.to_text())
        return f"Stored a new repository key in the OS keyring ({service}/{user})."
    raise SecretError(
        f"Cannot create the repository key behind '{ref}'.",
        "Set the environment variable to the output of 'entra-backup key generate', or use a "
        "file: or keyring: reference.",
    )


@app.command()
def init(
    config: ConfigOpt = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where the database, repository and logs live (for a new config)."),
    ] = None,
) -> None:
    """Create the config (commented, every option), the repository key, repository and DB."""
    path = config or default_config_path()
    if path.exists():
        console.print(f"Config {path} exists; checking it and creating what is missing.")
    else:
        target = (data_dir or path.parent / "data").resolve()
        write_config(path, target)
        console.print(f"Wrote {path} (edit the [tenants.…] section for your tenant).")
    cfg = load_config(path, known_kinds=known_names())
    console.print(create_key(cfg.agent.repository_key))
    from agent.runtime import Runtime

    rt = Runtime(cfg)
    repo_path = rt.repository_path
    if (repo_path / "format").exists():
        Repository.open(repo_path, rt.repository_key())
        console.print(f"Repository {repo_path} exists and the key opens it.")
    else:
        Repository.init(repo_path, rt.repository_key())
        console.print(f"Created repository {repo_path}.")
    Catalog(cfg.agent.database_url).close()
    console.print(f"Database ready ({_safe_url(cfg.agent.database_url)}).")
    console.print(
        "Next: 'entra-backup permissions' lists what to grant the service app; then "
        "'entra-backup backup --tenant NAME'."
    )


def _safe_url(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


@app.command()
def permissions(
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope", "-s", help="Kinds or areas (entra, exchange, defender); default all."
        ),
    ] = None,
    write: Annotated[bool, typer.Option("--write", help="Include what restore needs.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Print the minimal Graph application permissions (and roles) for a backup scope, and
    what restoring it needs on top (write permissions, directory roles)."""
    kinds = resolve(scope or ["*"])
    read = minimal_permissions(kinds)
    writes = minimal_permissions(kinds, write=True) if write else []
    graph_kinds = [k for k in kinds if k.channel != "bridge"]
    roles = sorted(
        {r for k in graph_kinds for r in (*k.read_roles, *(k.write_roles if write else ()))}
    )
    exchange = exchange_requirements(kinds, write=write)
    # What restore writes with, always listed: an operator grants it when a restore is due.
    restore_permissions = minimal_permissions(kinds, write=True)
    restore_needs = restore_roles(kinds)
    restore = {"permissions": restore_permissions, "roles": restore_needs}
    if json_out:
        print_json(
            {
                "kinds": [k.name for k in kinds],
                "read": read,
                "write": writes,
                "roles": roles,
                "restore": restore,
                "exchange": exchange,
            }
        )
        return
    if read or writes:
        console.print("Microsoft Graph application permissions (grant admin consent):")
        for p in read + [w for w in writes if w not in read]:
            console.print(f"  {p}")
    if roles:
        console.print("Directory roles: " + ", ".join(roles))
    if restore_permissions or restore_needs:
        console.print("Restore also needs (grant when a restore is due):")
        for p in restore_permissions:
            console.print(f"  {p}")
        portal = {k.name for k in kinds if k.channel == "portal"}  # the service account's role
        for role, names in restore_needs.items():
            shown = [f"{n} via the service account" if n in portal else n for n in names]
            console.print(f"  Directory role {role} (for {', '.join(shown)})")
    if exchange:
        console.print(
            f"Exchange (through the bridge host): {exchange['permission']} (admin consent) and "
            f"the Entra role {exchange['entra_role']} — or, least privilege, a custom Exchange "
            f"role group with: {', '.join(exchange['role_group_roles'])} "
            "(ps_scripts New-EbRoleGroupSetup creates it)."
        )
        if exchange.get("entra_role_only"):
            console.print(
                f"Restoring {', '.join(exchange['entra_role_only'])} needs the Exchange role "
                f"{exchange['entra_role_only_exchange_role']} (as the "
                f"{exchange['entra_role_only_role_group']} role group has it) or the Entra role "
                f"{exchange['entra_role']}: the least-privilege role group leaves Role "
                "Management out, since it could grant the app every other role."
            )
        if exchange["licence"]:
            console.print(
                "Some Defender kinds exist only with "
                + ", ".join(exchange["licence"])
                + "; without it they are skipped (not licensed)."
            )
    console.print(
        table(
            "Per kind",
            ["kind", "read (any one)", "write", "restore roles"],
            [
                [
                    k.name,
                    ", ".join(k.read_permissions),
                    write_needs(k),
                    ", ".join(dict.fromkeys((*k.write_roles, *k.undelete_roles))),
                ]
                for k in kinds
            ],
        )
    )


@app.command()
def kinds(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the support list as Markdown.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """List the object kinds the agent backs up."""
    if markdown:
        console.file.write(render_support_list())
        return
    if json_out:
        print_json(
            [
                {
                    "name": k.name,
                    "title": k.title,
                    "area": k.area.value,
                    "incremental": k.incremental.value,
                    "source": k.source,
                    "read": list(k.read_permissions),
                    "write": list(k.write_permissions),
                }
                for k in ALL_KINDS
            ]
        )
        return
    console.print(
        table(
            "Kinds",
            ["kind", "area", "source", "incremental", "what"],
            [[k.name, k.area.value, k.source, k.incremental.value, k.describes] for k in ALL_KINDS],
        )
    )
