"""The ``entra-backup`` command line.

Every failure the operator can fix is an AgentError: printed as one message with its fix,
never as a traceback, with a non-zero exit code. ``--json`` on list/show commands prints
machine-readable output for runbooks.
"""

from __future__ import annotations

import logging
import os

import typer
from rich.markup import escape
from typer.exceptions import TyperException

# Importing the command modules registers their commands on the apps.
from agent.commands import backup as _backup  # noqa: F401
from agent.commands import catalog as _catalog  # noqa: F401
from agent.commands import compare as _compare  # noqa: F401
from agent.commands import demo as _demo  # noqa: F401
from agent.commands import restore as _restore  # noqa: F401
from agent.commands import setup as _setup  # noqa: F401
from agent.commands.common import app, err_console
from agent.errors import AgentError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one clear line per failure, never a traceback."""
    try:
        # Without standalone mode click returns a typer.Exit's code instead of raising it.
        code = app(args=argv, standalone_mode=False)
        return code if isinstance(code, int) else 0
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        err_console.print("Aborted.")
        return 130
    except TyperException as exc:  # usage errors: typer prints its own help text
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(str(exc))
        return int(exc.exit_code)
    except AgentError as exc:
        # Messages name config tables ("[tenants.x.service_account]"): never read as markup.
        err_console.print(f"[bold red]error[/] [{exc.code}] {escape(exc.message)}", highlight=False)
        if exc.fix:
            err_console.print(f"  [bold]fix:[/] {escape(exc.fix)}", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        return 130
    except Exception as exc:
        logging.getLogger("entra_backup").exception("Unexpected error")
        err_console.print(
            f"[bold red]unexpected error[/] {type(exc).__name__}: {exc}\n"
            "  This is a bug in entra-backup; the log file has the details.",
            highlight=False,
        )
        if os.environ.get("ENTRA_BACKUP_DEBUG"):
            raise
        return 70


if __name__ == "__main__":
    raise SystemExit(main())
