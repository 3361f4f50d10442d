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
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
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
# OneID over the whole graph, one attach, an operator by hand, a duplicate member record
# imported, a probabilistic match above the auto threshold, a match a reviewer accepted
MERGE_MODES = ("batch", "incremental", "manual", "import", "probabilistic", "review")
# card_change: a re-imported member moved to a new card; the earlier card stays its own
# and no longer counts for "one card per brand" (identity/records.py);
# duplicate_registration: evidence joined two cards of one brand (one person's)
CONFLICT_KINDS = (
    "exclusive_clash",
    "phone_change",
    "weak_ambiguous",
    "duplicate_registration",
    "card_change",
)
# account: the channel says both identifiers are one account (a card typed with a phone);
# evidence: a rule or a probabilistic match says two member records are one person.
LINK_KINDS = ("account", "evidence")
# pending: waits for a reviewer; accepted / merged: merged by a reviewer / automatically;
# rejected: never proposed again; undone: the merge was undone (blocked like a rejection)
REVIEW_STATUSES = ("pending", "accepted", "rejected", "merged", "undone")

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
    # What probabilistic matching compares, beside name, birth date, city and phones:
    # the name's parts (AES-GCM like the name), the address (AES-GCM) and the postcode.
    Column("given_name_enc", LargeBinary),
    Column("family_name_enc", LargeBinary),
    Column("address_enc", LargeBinary),
    Column("postcode", String(16)),
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
    # Where the value is unique (identity/types.py): a card's brand, an openid's app, a
    # WeCom contact's corp id, ...; '' for global types and for a type's default scope.
    Column("scope", String(64), nullable=False, server_default=""),
    Column("brand_id", String(64)),
    Column("verified", Boolean, nullable=False, server_default="0"),
    Column("source_channel", String(32), nullable=False),
    Column("first_seen", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
    Column("member_id", BigId),
    # The value before its scope: a look-up that does not know the scope (a card number
    # typed in the console) still seeks the index on (group_id, type, value_key).
    UniqueConstraint("group_id", "type", "value_key", "scope"),
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
    Column("kind", String(16), nullable=False, server_default="account"),  # LINK_KINDS
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
    # verified phones in use at once), 'phone_change' (accepted, reported), 'weak_ambiguous',
    # 'card_change' (identity_x: the earlier card, identity_y: the new one; accepted).
    Column("kind", String(32), nullable=False),
    Column("link_id", BigId, ForeignKey("identity_links.link_id")),
    Column("identity_x", BigId, ForeignKey("identities.identity_id"), nullable=False),
    Column("identity_y", BigId, ForeignKey("identities.identity_id")),
    Column("detail", String(300), nullable=False),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("detected_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "kind", "identity_x", "identity_y"),
)

# Probabilistic matching (identity/matching): pairs of members scored by the trained model.
match_reviews = Table(
    "match_reviews",
    metadata,
    Column("review_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("member_a", BigInteger, nullable=False),  # the lower member id of the pair
    Column("member_b", BigInteger, nullable=False),
    Column("match_weight", Float, nullable=False),
    Column("match_probability", Float, nullable=False),
    # JSON: [{"field": ..., "level": ..., "weight": ...}] per comparison, no personal data
    Column("field_weights", Text, nullable=False),
    Column("status", String(16), nullable=False),  # REVIEW_STATUSES
    Column("model_id", BigInteger),
    Column("merge_id", BigInteger),
    Column("detected_at", DateTime, nullable=False),
    Column("decided_at", DateTime),
    Column("decided_by", String(64)),
    CheckConstraint("member_a < member_b", name="pair_ordered"),
    CheckConstraint(
        "status IN ('pending', 'accepted', 'rejected', 'merged', 'undone')", name="status_known"
    ),
    UniqueConstraint("group_id", "member_a", "member_b"),
)
Index(
    "ix_match_reviews_queue",
    match_reviews.c.group_id,
    match_reviews.c.status,
    match_reviews.c.match_weight,
)

# A trained Splink model (its settings with m and u), newest per group is the one in use.
match_models = Table(
    "match_models",
    metadata,
    Column("model_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("engine", String(16), nullable=False),  # duckdb | spark
    Column("settings_json", Text, nullable=False),
    Column("auto_threshold", Float, nullable=False),  # match probability
    Column("review_threshold", Float, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("trained_at", DateTime, nullable=False),
)
Index("ix_match_models_group", match_models.c.group_id, match_models.c.model_id)

# Blocking keys of each active member (keyed hashes, never clear values): a new record
# finds its candidate members through these in one indexed lookup per rule.
member_match_keys = Table(
    "member_match_keys",
    metadata,
    Column("group_id", String(64), primary_key=True),
    Column("rule", String(32), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("member_id", BigInteger, primary_key=True),
)
Index("ix_member_match_keys_member", member_match_keys.c.member_id)
