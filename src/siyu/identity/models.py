"""OneID tables: members, their identities, the links between identities, merges, conflicts.

A member is the resolved person. Identities are the identifiers channels know (phone,
unionid, Tmall ouid, ...); links are observations that two identifiers belong to one
account. Members change only through OneID, and every merge is recorded so it can be
undone.

The three large tables (members, identities, identity_links) declare no foreign keys, for
the reason given in siyu.orders.models: OneID writes them set-wise and guarantees the
references itself. The small audit tables (merges, conflicts) keep theirs.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from siyu.store.metadata import BigId, metadata

# The codes these tables hold, each with a label for people (console/i18n, siyu.i18n).
MEMBER_STATUSES = ("active", "merged")  # merged: absorbed by another member (merged_into)
MERGE_MODES = ("batch", "incremental")  # OneID over the whole graph, or one attach
CONFLICT_KINDS = ("exclusive_clash", "phone_change", "weak_ambiguous")

members = Table(
    "members",
    metadata,
    Column("member_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    # 'active' or 'merged' (then merged_into names the survivor).
    Column("status", String(16), nullable=False, server_default="active"),
    Column("merged_into", BigId),
    # The legacy member number this member was imported from, for idempotent re-import.
    Column("source_ref", String(128)),
    Column("brand_id", String(64)),
    Column("registered_at", DateTime, nullable=False),
    Column("name_enc", LargeBinary),
    Column("name_masked", String(64)),
    Column("gender", String(1)),
    Column("birth_date", Date),
    Column("city", String(64)),
    Column("home_store_id", String(64)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "source_ref"),
)
Index("ix_members_group_status", members.c.group_id, members.c.status)

identities = Table(
    "identities",
    metadata,
    Column("identity_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("type", String(32), nullable=False),
    # HMAC-SHA256(secret, canonical value), hex: what uniqueness and matching use, so a
    # phone can be found without being stored in the clear.
    Column("value_key", String(64), nullable=False),
    # The canonical value in the clear, only for types that are not personal data.
    Column("value", String(256)),
    # AES-GCM of the canonical value, for personal types whose value can be shown to
    # roles allowed to see it (phone). Hashes and nicknames keep no clear value at all.
    Column("value_enc", LargeBinary),
    Column("value_masked", String(64), nullable=False),
    Column("brand_id", String(64)),
    Column("verified", Boolean, nullable=False, server_default="0"),
    Column("source_channel", String(32), nullable=False),
    Column("first_seen", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
    Column("member_id", BigId),
    UniqueConstraint("group_id", "type", "value_key"),
)
Index("ix_identities_member_id", identities.c.member_id)

identity_links = Table(
    "identity_links",
    metadata,
    Column("link_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    # Stored with identity_a < identity_b so one pair has one row.
    Column("identity_a", BigId, nullable=False),
    Column("identity_b", BigId, nullable=False),
    Column("channel", String(32), nullable=False),
    Column("verified", Boolean, nullable=False, server_default="0"),
    Column("first_seen", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
    # Set when an operator undid a merge this link caused: resolution ignores it from then on.
    Column("blocked", Boolean, nullable=False, server_default="0"),
    UniqueConstraint("group_id", "identity_a", "identity_b"),
)
Index("ix_identity_links_identity_b", identity_links.c.identity_b)

merges = Table(
    "merges",
    metadata,
    Column("merge_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), ForeignKey("brand_groups.group_id"), nullable=False),
    Column("survivor_id", BigId, ForeignKey("members.member_id"), nullable=False),
    Column("merged_id", BigId, ForeignKey("members.member_id"), nullable=False),
    Column("mode", String(16), nullable=False),  # one of MERGE_MODES
    Column("reason", String(200), nullable=False),
    # JSON: {"identities": [ids moved from merged to survivor], "links": [bridging link ids]}
    Column("evidence", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("undone_at", DateTime),
    Column("undo_reason", String(200)),
)
Index("ix_merges_merged_id", merges.c.merged_id)
Index("ix_merges_survivor_id", merges.c.survivor_id)  # a member's merges (Member 360)

identity_conflicts = Table(
    "identity_conflicts",
    metadata,
    Column("conflict_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), ForeignKey("brand_groups.group_id"), nullable=False),
    # CONFLICT_KINDS: 'exclusive_clash' (e.g. two unionids, two cards of one brand, two
    # verified phones in use at once), 'phone_change' (accepted, reported), 'weak_ambiguous'.
    Column("kind", String(32), nullable=False),
    Column("link_id", BigId, ForeignKey("identity_links.link_id")),
    Column("identity_x", BigId, ForeignKey("identities.identity_id"), nullable=False),
    Column("identity_y", BigId, ForeignKey("identities.identity_id")),
    Column("detail", String(300), nullable=False),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("detected_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "kind", "identity_x", "identity_y"),
)
