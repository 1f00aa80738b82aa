"""Alembic environment: delegates to the shared runner (version table in this schema)."""

from shared.migration_env import run_migrations

run_migrations()
