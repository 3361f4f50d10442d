"""Alembic environment: the engine is handed over by siyu.store.migrate."""

from __future__ import annotations

from alembic import context

from siyu.store.migrations.models_registry import after_migrate, load_all_models

target_metadata = load_all_models()
engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    after_migrate(connection)
    connection.commit()
