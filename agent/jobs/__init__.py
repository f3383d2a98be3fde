"""Jobs: backup (and later restore) runs, and the repository-wide checks."""
