"""The catalog database: jobs, job log, staging, snapshots and object versions."""
