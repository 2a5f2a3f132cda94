"""Alembic environment: migrations run on the connection Socle hands over (see engine.migrate)."""

from __future__ import annotations

from alembic import context

from socle.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Socle runs its migrations through socle.store.engine.migrate()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
