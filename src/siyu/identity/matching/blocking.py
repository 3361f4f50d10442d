"""Which pairs are scored at all: blocking rules, and the same keys for an index.

A pair is scored when one rule's key agrees on both records. The rules must keep a
million members tractable on two cores yet find the duplicates people make: a phone with
one digit wrong or two neighbours swapped at the till, a name typed as a homophone or
with given and family swapped, a birth date typo. Each rule is a tuple of SQL
expressions over the standardised columns; Splink blocks on them and `blocking_keys`
evaluates the very same expressions (in DuckDB), so a key stored for a member is the key
a new record is looked up with.

Phones (and identity numbers) are split three ways so that any one substituted digit,
and any swap of two neighbours, leaves one key whole (positions counted on an 11-digit
mainland mobile after its +86): head = all but the last 4 digits (1-7), tail = the last
5 (7-11), skip = all but the three digits around the seam (1-5 and 9-11).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from splink import block_on
from splink.internals.blocking_rule_creator import BlockingRuleCreator

from siyu.identity.matching.columns import UNIQUE_ID
from siyu.identity.matching.standardise import standardise

KEY_SEPARATOR = "\x1f"  # never in a standardised value (control characters are dropped)
KEY_SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.int64(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
    ]
)


def _both_names(expression: str) -> str:
    return f"CASE WHEN given_pinyin IS NOT NULL AND family_pinyin IS NOT NULL THEN {expression} END"


@dataclass(frozen=True)
class Rule:
    name: str  # at most 32 characters (member_match_keys.rule)
    expressions: tuple[str, ...]
    fields: tuple[str, ...]  # the comparison fields the rule needs present

    def creator(self) -> BlockingRuleCreator:
        return block_on(*self.expressions)


def head_key(column: str) -> str:
    """All but the last four characters; only of ten or more (a shorter head is too
    common to block on)."""
    return f"CASE WHEN length({column}) >= 10 THEN substr({column}, 1, length({column}) - 4) END"


def tail_key(column: str) -> str:
    """The last five characters, of seven or more."""
    return f"CASE WHEN length({column}) >= 7 THEN substr({column}, length({column}) - 4, 5) END"


def skip_key(column: str) -> str:
    """All but the three characters where head and tail meet, of ten or more."""
    return (
        f"CASE WHEN length({column}) >= 10 THEN substr({column}, 1, length({column}) - 6) "
        f"|| substr({column}, length({column}) - 2, 3) END"
    )


_NAMES = (
    _both_names("least(given_pinyin, family_pinyin)"),
    _both_names("greatest(given_pinyin, family_pinyin)"),
)

RULES: tuple[Rule, ...] = (
    Rule("phone_head", (head_key("phone"),), ("phone",)),
    Rule("phone_tail", (tail_key("phone"),), ("phone",)),
    Rule("phone_skip", (skip_key("phone"),), ("phone",)),
    # the name (exact or swapped, in characters or pinyin) is too common alone (张伟):
    # with the postcode, or with the birth year
    Rule("name_postcode", (*_NAMES, "postcode"), ("name", "address")),
    Rule("name_birth_year", (*_NAMES, "substr(birth_ymd, 1, 4)"), ("name", "birth_date")),
    Rule("birth_given", ("birth_ymd", "given_pinyin"), ("birth_date", "name")),
    Rule("birth_family", ("birth_ymd", "family_pinyin"), ("birth_date", "name")),
    Rule("birth_postcode", ("birth_ymd", "postcode"), ("birth_date", "address")),
    Rule("postcode_given", ("postcode", "given_pinyin"), ("address", "name")),
    Rule("address", ("address",), ("address",)),
    Rule("email", ("email",), ("email",)),
    Rule("email_user", ("email_user",), ("email",)),
    Rule("id_number", ("id_number",), ("id_number",)),
    Rule("id_number_head", (head_key("id_number"),), ("id_number",)),
    Rule("id_number_tail", (tail_key("id_number"),), ("id_number",)),
    Rule("id_number_skip", (skip_key("id_number"),), ("id_number",)),
)
RULES_BY_NAME = {r.name: r for r in RULES}


def rules_for(fields: list[str]) -> list[Rule]:
    """The rules whose fields are all compared (a rule on an absent field finds nothing)."""
    return [r for r in RULES if all(f in fields for f in r.fields)]


_LOCAL = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per thread, kept: connecting costs tens of milliseconds, which
    incremental matching (one record's keys per call) cannot pay each time."""
    con = getattr(_LOCAL, "con", None)
    if con is None:
        con = _LOCAL.con = duckdb.connect()
    return con


def keys_of_standard(standard: pa.Table, rules: list[Rule] | None = None) -> pa.Table:
    """(record_id, rule, key) of standardised records: one row per rule whose key is
    whole. `key` holds clear values (names, phone digits): store a keyed hash of it."""
    rules = list(RULES) if rules is None else rules
    con = _connection()
    try:
        con.register("standard", standard)
        selects = []
        for rule in rules:
            parts = ", ".join(f"CAST({e} AS VARCHAR)" for e in rule.expressions)
            whole = " AND ".join(f"({e}) IS NOT NULL" for e in rule.expressions)
            selects.append(
                f"SELECT {UNIQUE_ID}, '{rule.name}' AS rule, "
                f"concat_ws(chr({ord(KEY_SEPARATOR)}), {parts}) AS key "
                f"FROM standard WHERE {whole}"
            )
        sql = " UNION ALL ".join(selects) + f" ORDER BY {UNIQUE_ID}, rule"
        return con.sql(sql).to_arrow_table().cast(KEY_SCHEMA)
    finally:
        con.unregister("standard")


def blocking_keys(records: pa.Table) -> pa.Table:
    """(record_id, rule, key) of RAW_COLUMNS records under every rule, standardised as
    prediction standardises them: a new record's candidates are the members that share
    one of its keys. `key` holds clear values: store and look up a keyed hash of it."""
    return keys_of_standard(standardise(records))
