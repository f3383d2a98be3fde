"""Run the agent as a Windows service (pywin32; install with the 'windows' extra).

    python -m agent.winservice --startup auto install
    python -m agent.winservice start

The service reads its config from %ENTRA_BACKUP_CONFIG% or
%ProgramData%\\entra-backup\\agent.toml, like ``entra-backup serve``. Stopping the service asks
running jobs to stop at their next checkpoint (nothing half-written becomes visible).
"""

from __future__ import annotations

import sys
from typing import Any

try:  # pywin32 exists only on Windows
    import servicemanager
    import win32event
    import win32service
    import win32serviceutil
except ImportError:  # pragma: no cover - exercised on Windows only
    win32serviceutil = None


def _service_class() -> Any:
    from agent.commands.common import default_config_path, load
    from agent.runtime import Runtime
    from agent.scheduler import AgentService

    class EntraBackupService(win32serviceutil.ServiceFramework):
        _svc_name_ = "entra-backup"
        _svc_display_name_ = "entra-backup agent"
        _svc_description_ = "Backs up Microsoft Entra ID and Microsoft 365 admin portal settings."

        def __init__(self, args: Any) -> None:
            super().__init__(args)
            self._wake = win32event.CreateEvent(None, 0, 0, None)
            self._service: AgentService | None = None

        def SvcStop(self) -> None:  # pywin32's name
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)
            if self._service is not None:
                self._service.stop_event.set()
            win32event.SetEvent(self._wake)

        def SvcDoRun(self) -> None:  # pywin32's name
            servicemanager.LogInfoMsg("entra-backup agent starting")
            self._service = AgentService(Runtime(load(default_config_path())))
            self._service.serve(install_signals=False)

    return EntraBackupService


def main() -> None:
    if win32serviceutil is None:
        sys.exit("The Windows service needs pywin32: pip install 'entra-backup[windows]'.")
    win32serviceutil.HandleCommandLine(_service_class())


if __name__ == "__main__":
    main()
