"""What every CLI command shares: the typer apps, options, output helpers, config loading."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress as Bar
from rich.progress import SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent import __version__
from agent.collect.base import Progress
from agent.config import AgentConfig, load_config
from agent.errors import ConfigError
from agent.kinds import known_names
from agent.logs import setup_logging
from agent.runtime import Runtime

app = typer.Typer(
    name="entra-backup",
    help="Back up and restore Microsoft Entra ID and Microsoft 365 admin portal settings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
jobs_app = typer.Typer(help="Backup jobs and their logs.", no_args_is_help=True)
snapshots_app = typer.Typer(help="Point-in-time snapshots.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(snapshots_app, name="snapshots")

# Piped output (logs, runbooks) is not wrapped at 80 columns; a terminal gets its own width.
console = Console(width=None if sys.stdout.isatty() else 132)
err_console = Console(stderr=True)

CONFIG_ENV = "ENTRA_BACKUP_CONFIG"
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help=f"Config file (default: ${CONFIG_ENV}, ./agent.toml, then the platform default).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def default_config_path() -> Path:
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    local = Path("agent.toml")
    if local.exists():
        return local
    if sys.platform == "win32":
        return (
            Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "entra-backup" / "agent.toml"
        )
    return Path("/etc/entra-backup/agent.toml")


def load(config: Path | None) -> AgentConfig:
    path = config or default_config_path()
    if not path.exists():
        raise ConfigError(
            f"Config file {path} not found.",
            f"Run 'entra-backup init --config {path}' to create one, or pass --config.",
        )
    cfg = load_config(path, known_kinds=known_names())
    setup_logging(cfg.agent.log_level, Path(cfg.agent.log_file), console=False)
    return cfg


def runtime(config: Path | None) -> Runtime:
    return Runtime(load(config))


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Show the version.")] = False,
) -> None:
    if version:
        console.print(f"entra-backup {__version__}")
        raise typer.Exit()


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for index, col in enumerate(columns):
        # The first column names the row (a kind, an id): never broken across lines.
        t.add_column(col, overflow="fold", no_wrap=index == 0)
    for row in rows:
        t.add_row(*[("" if v is None else str(v)) for v in row])
    return t


@contextmanager
def kind_progress(label: str, quiet: bool) -> Iterator[Progress]:
    """A transient progress line per kind ("<label>: <kind>  1,234 objects") while a job reads;
    yields the callback collectors report to."""
    with Bar(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("[bold]{task.completed:,}[/] objects"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(kind: str, done: int) -> None:
            if kind not in tasks:
                tasks[kind] = bar.add_task(f"{label}: {kind}", total=None)
            bar.update(tasks[kind], completed=done)

        yield progress


def require(condition: bool, message: str, fix: str) -> None:
    if not condition:
        raise ConfigError(message, fix)
