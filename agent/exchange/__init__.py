"""Exchange Online over a PowerShell bridge host: the ps_scripts contract and (later) the PSRP bridge."""
