"""API keys. Only a keyed hash of the secret is stored; the secret is shown once."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, String, Table, Text

from siyu.store.metadata import BigId, metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), ForeignKey("brand_groups.group_id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    # JSON: {"stores": [...], "guide_id": ..., "channel": ..., "member_id": ...}
    Column("scope", Text, nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime),
    Column("revoked_at", DateTime),
)

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("key_id", BigId, ForeignKey("api_keys.key_id"), primary_key=True),
    Column("idempotency_key", String(200), primary_key=True),
    Column("method", String(8), nullable=False),
    Column("path", String(500), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    # 0 while the first request is still running; then the HTTP status it answered.
    Column("status", BigId, nullable=False),
    Column("response", Text),
    Column("created_at", DateTime, nullable=False),
)
