"""``python -m agent`` is the same as the ``entra-backup`` command."""

from agent.cli import main

raise SystemExit(main())
