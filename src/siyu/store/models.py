"""The store's own facts about itself (not a domain's): one row per name.

`secret_fingerprint`: a keyed hash of the secret the store's personal data and API keys
were made with, so a command started with another secret is refused (siyu.store.secret).
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table

from siyu.store.metadata import metadata

store_meta = Table(
    "store_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
)
