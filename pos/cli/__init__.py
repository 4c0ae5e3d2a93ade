"""The `ewarung` command: one entry point, a subcommand per job (outer layer)."""
