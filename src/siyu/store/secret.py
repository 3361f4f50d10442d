"""The store's secret: generated only with a new store, refused when it is missing for an
existing one or is not the one the store was made with.

Phones and names are encrypted, and API keys hashed, with the secret (siyu.privacy): a
second secret for an existing store reads none of its personal data and logs in none of
its keys. So a key is generated only when the store is new (no tables yet, its first
migration ahead), and the store keeps a fingerprint of its secret (`store_meta`) to refuse
any other one with an error naming the setting.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError

from siyu.config import Settings, generate_secret_file, secret_fingerprint
from siyu.errors import ConfigError
from siyu.store.models import store_meta
from siyu.store.times import stored_now

FINGERPRINT = "secret_fingerprint"


def store_is_new(engine: Engine) -> bool:
    """No tables yet (at most Alembic's own). Never creates an embedded store's file."""
    database = engine.url.database
    if engine.url.get_backend_name() == "sqlite" and database and database != ":memory:":
        path = Path(database)
        if not path.exists() or path.stat().st_size == 0:
            return True
    return not set(inspect(engine).get_table_names()) - {"alembic_version"}


def bind_secret(engine: Engine, settings: Settings) -> Settings:
    """`settings` with the store's secret: generated into its key file when the store is
    new, else the one given, checked against the store's fingerprint."""
    if not settings.secret_key:
        where = _where(engine)
        if not settings.secret_key_file:
            raise ConfigError(f"SIYU_SECRET_KEY: not set, and no key file for the store {where}")
        if not store_is_new(engine):
            raise ConfigError(
                f"the store {where} already exists but its secret key was not found "
                f"(looked for {settings.secret_key_file}): set SIYU_SECRET_KEY to the key it "
                "was created with, or SIYU_SECRET_KEY_FILE to its key file. No new key is "
                "generated for an existing store: it could read none of its phones and names "
                "nor log in any of its API keys"
            )
        secret = generate_secret_file(Path(settings.secret_key_file))
        settings = replace(settings, secret_key=secret)
    check_fingerprint(engine, settings)
    return settings


def check_fingerprint(engine: Engine, settings: Settings) -> None:
    """Refuse a secret that is not the store's; record it when the store has none yet
    (a new store, once migrated). Nothing to do before the first migration."""
    if store_is_new(engine) or not inspect(engine).has_table(store_meta.name):
        return
    mine = secret_fingerprint(settings.secret_key)
    kept = _kept(engine)
    if kept is None:
        try:
            with engine.begin() as conn:
                row = {"name": FINGERPRINT, "value": mine, "created_at": stored_now()}
                conn.execute(store_meta.insert().values(**row))
            return
        except IntegrityError:  # another process recorded one first: check against it
            kept = _kept(engine)
    if kept != mine:
        raise ConfigError(
            f"the secret key from {settings.secret_origin} is not the one the store "
            f"{_where(engine)} was created with: set SIYU_SECRET_KEY to that store's key, "
            "or SIYU_SECRET_KEY_FILE to its key file (`siyu demo` prints where its key is). "
            "With another key its phones and names cannot be read and its API keys "
            "cannot log in"
        )


def _kept(engine: Engine) -> str | None:
    with engine.connect() as conn:
        value = conn.execute(
            select(store_meta.c.value).where(store_meta.c.name == FINGERPRINT)
        ).scalar()
    return None if value is None else str(value)


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
