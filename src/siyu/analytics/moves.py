"""Identity moves: the few identities whose landed facts may name a member OneID has left.

A fact is landed with the member its identity belonged to at the time. Reading it as of
now means asking the identities snapshot again, and joining every order, line and event to
all 10M identities costs the nightly segments and tags 38 s of 138 (docs/benchmarks.md).
Yet almost every fact already names its current member: only identities OneID moved since
(a merge, a split, a late link) need the lookup. Landing keeps that short list.

The rule, kept true by every landing run (`sinks.Sink.update_moves`): an identity is
**not** in the moves table only if the identities snapshot holds it and every landed fact
of it names the snapshot's member (null included). Each identity in the table maps to its
snapshot member and says whether the snapshot holds it (`known`), so reading a fact's
member as "the moves' member if known, else the landed one" gives exactly what the full
snapshot join gives (`warehouse.Warehouse._current`).

A run keeps the rule incrementally: the earlier moves, every identity whose snapshot member
changed since the last snapshot, and every identity of the facts landed this run that
disagrees with the new snapshot. A run that finds no valid moves (the first, a warehouse
landed by an older siyu, a run stopped half way) computes them from every fact instead.
The sink invalidates the moves before a run changes anything and marks them valid when
they are written, so a reader never trusts moves that a half-finished run left behind: it
falls back to the whole snapshot, which is slower and exactly as right.

What a sink does with them: a Parquet warehouse keeps them, and its readers (Spark, DuckDB)
left-join the facts to the moved identities the snapshot holds. A DuckDB warehouse goes one
step further in the same transaction: it gives those identities' facts their snapshot
member in place (an UPDATE of a few scattered rows), so its moves keep only identities the
snapshot lacks, and its readers join nothing at all. A join to the moved identities alone
halves what a single pass over the facts pays for the lookup (the estimated previews), but
not what the nightly pays (docs/benchmarks.md, session 13): the join itself costs, not the
size of the table joined. A DuckDB file updates in place cheaply, where a Parquet day file
would be written again.
"""

from __future__ import annotations

from collections.abc import Mapping

from siyu.analytics.schema import FACTS, Fact

MOVES = "identity_moves"
KEYED = tuple(f for f in FACTS if f.identity)  # the facts that name an identity
# an identities snapshot with no rows, for a warehouse that has none yet
NO_IDENTITIES = "(SELECT NULL::BIGINT AS identity_id, NULL::BIGINT AS member_id WHERE false)"


def moves_sql(
    facts: Mapping[str, str],
    current: str,
    previous: str | None = None,
    earlier: str | None = None,
) -> str:
    """DuckDB SQL of the moves table (identity_id, member_id, known).

    `facts`: fact name -> a relation of the rows to check (the whole table, or the days
    landed this run); `current`: the new identities snapshot (identity_id, member_id);
    `previous`: the snapshot before this run, when it was replaced; `earlier`: the moves
    table before this run (identity_id)."""
    keys = []
    for name, relation in facts.items():
        key = next(f.identity for f in KEYED if f.name == name)
        # one (identity, member) pair per identity and member before the join: 162M lines
        # come down to about one pair per buyer
        keys.append(
            f"SELECT f.identity_id FROM (SELECT DISTINCT {key} AS identity_id, member_id "
            f"FROM {relation} WHERE {key} IS NOT NULL) f "
            f"LEFT JOIN {current} s ON s.identity_id = f.identity_id "
            "WHERE s.identity_id IS NULL OR s.member_id IS DISTINCT FROM f.member_id"
        )
    if previous is not None:
        keys.append(
            f"SELECT p.identity_id FROM {previous} p "
            f"LEFT JOIN {current} s ON s.identity_id = p.identity_id "
            "WHERE s.identity_id IS NULL OR s.member_id IS DISTINCT FROM p.member_id"
        )
    if earlier is not None:
        keys.append(f"SELECT identity_id FROM {earlier}")
    if not keys:
        return f"SELECT *, NULL::BOOLEAN AS known FROM {NO_IDENTITIES}"
    union = " UNION ".join(keys)
    return (
        "SELECT k.identity_id, s.member_id, s.identity_id IS NOT NULL AS known "
        f"FROM ({union}) k "
        f"LEFT JOIN {current} s ON s.identity_id = k.identity_id"
    )


def rewrite_sql(fact: Fact, moves: str = "next_moves") -> str:
    """DuckDB SQL giving `fact`'s rows of one group (the parameter) the snapshot member of
    their identity, for the identities of `moves` the snapshot holds; only rows that
    differ are written."""
    return (
        f"UPDATE {fact.name} SET member_id = m.member_id FROM {moves} m "
        f"WHERE {fact.name}.group_id = ? AND {fact.name}.{fact.identity} = m.identity_id "
        f"AND m.known AND {fact.name}.member_id IS DISTINCT FROM m.member_id"
    )
