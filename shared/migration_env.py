"""The Alembic environment every service's ``migrations/env.py`` delegates to.

Migrations run on the connection :func:`shared.db.migrate` hands over, with the version
table inside the service's own schema so that histories never mix.
"""

from __future__ import annotations

from alembic import context


def run_migrations() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    service = config.attributes.get("service")
    if connection is None or service is None:
        raise RuntimeError("run migrations with `ila migrate` (shared.db.migrate)")
    context.configure(
        connection=connection,
        version_table_schema=service,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
