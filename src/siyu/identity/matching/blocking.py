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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Part:
    """One part of a blocking key, written once and evaluated two ways: `sql` inside
    Splink's and DuckDB's queries (the batch pass, millions of records), `of` on one
    record's standardised values in Python (an incremental match, where planning the SQL
    for one record costs ~40 ms and the evaluation microseconds). A test holds the two
    equal on labelled and adversarial records."""

    sql: str
    of: Callable[[Mapping[str, Any]], str | None]


def column(name: str) -> Part:
    return Part(name, lambda r: _text(r[name]))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def head_key(column: str) -> Part:
    """All but the last four characters; only of ten or more (a shorter head is too
    common to block on)."""
    return Part(
        f"CASE WHEN length({column}) >= 10 THEN substr({column}, 1, length({column}) - 4) END",
        lambda r: _when(r[column], 10, lambda v: v[:-4]),
    )


def tail_key(column: str) -> Part:
    """The last five characters, of seven or more."""
    return Part(
        f"CASE WHEN length({column}) >= 7 THEN substr({column}, length({column}) - 4, 5) END",
        lambda r: _when(r[column], 7, lambda v: v[-5:]),
    )


def skip_key(column: str) -> Part:
    """All but the three characters where head and tail meet, of ten or more."""
    return Part(
        f"CASE WHEN length({column}) >= 10 THEN substr({column}, 1, length({column}) - 6) "
        f"|| substr({column}, length({column}) - 2, 3) END",
        lambda r: _when(r[column], 10, lambda v: v[:-6] + v[-3:]),
    )


def _when(value: Any, min_length: int, part: Callable[[str], str]) -> str | None:
    return None if value is None or len(str(value)) < min_length else part(str(value))


def _both_names(pick: str) -> Part:
    """The lesser or greater of the two name parts' pinyin (a swapped name blocks with the
    unswapped one); only when both are known."""

    def of(r: Mapping[str, Any]) -> str | None:
        given, family = r["given_pinyin"], r["family_pinyin"]
        if given is None or family is None:
            return None
        return min(given, family) if pick == "least" else max(given, family)

    return Part(
        "CASE WHEN given_pinyin IS NOT NULL AND family_pinyin IS NOT NULL "
        f"THEN {pick}(given_pinyin, family_pinyin) END",
        of,
    )


BIRTH_YEAR = Part("substr(birth_ymd, 1, 4)", lambda r: _when(r["birth_ymd"], 0, lambda v: v[:4]))


@dataclass(frozen=True)
class Rule:
    name: str  # at most 32 characters (member_match_keys.rule)
    parts: tuple[Part, ...]
    fields: tuple[str, ...]  # the comparison fields the rule needs present

    @property
    def expressions(self) -> tuple[str, ...]:
        return tuple(p.sql for p in self.parts)

    def creator(self) -> BlockingRuleCreator:
        return block_on(*self.expressions)

    def key_of(self, record: Mapping[str, Any]) -> str | None:
        """The rule's key for one standardised record; None unless every part is known."""
        values = [p.of(record) for p in self.parts]
        if any(v is None for v in values):
            return None
        return KEY_SEPARATOR.join(values)  # type: ignore[arg-type]


_NAMES = (_both_names("least"), _both_names("greatest"))


def _rule(name: str, parts: tuple[Part | str, ...], fields: tuple[str, ...]) -> Rule:
    """A rule whose plain parts are named by their column."""
    return Rule(name, tuple(column(p) if isinstance(p, str) else p for p in parts), fields)


RULES: tuple[Rule, ...] = (
    _rule("phone_head", (head_key("phone"),), ("phone",)),
    _rule("phone_tail", (tail_key("phone"),), ("phone",)),
    _rule("phone_skip", (skip_key("phone"),), ("phone",)),
    # the name (exact or swapped, in characters or pinyin) is too common alone (张伟):
    # with the postcode, or with the birth year
    _rule("name_postcode", (*_NAMES, "postcode"), ("name", "address")),
    _rule("name_birth_year", (*_NAMES, BIRTH_YEAR), ("name", "birth_date")),
    _rule("birth_given", ("birth_ymd", "given_pinyin"), ("birth_date", "name")),
    _rule("birth_family", ("birth_ymd", "family_pinyin"), ("birth_date", "name")),
    _rule("birth_postcode", ("birth_ymd", "postcode"), ("birth_date", "address")),
    _rule("postcode_given", ("postcode", "given_pinyin"), ("address", "name")),
    _rule("address", ("address",), ("address",)),
    _rule("email", ("email",), ("email",)),
    _rule("email_user", ("email_user",), ("email",)),
    _rule("id_number", ("id_number",), ("id_number",)),
    _rule("id_number_head", (head_key("id_number"),), ("id_number",)),
    _rule("id_number_tail", (tail_key("id_number"),), ("id_number",)),
    _rule("id_number_skip", (skip_key("id_number"),), ("id_number",)),
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


# Up to this many records, keys are evaluated in Python (Part.of); beyond, in one DuckDB
# query, whose planning (~40 ms) is then small beside the work.
PYTHON_KEYS_UP_TO = 256


def keys_of_standard(standard: pa.Table, rules: list[Rule] | None = None) -> pa.Table:
    """(record_id, rule, key) of standardised records: one row per rule whose key is
    whole, ordered by record and rule. `key` holds clear values (names, phone digits):
    store a keyed hash of it."""
    rules = list(RULES) if rules is None else rules
    if standard.num_rows <= PYTHON_KEYS_UP_TO:
        return keys_in_python(standard, rules)
    return keys_in_duckdb(standard, rules)


def keys_in_python(standard: pa.Table, rules: list[Rule]) -> pa.Table:
    rows = []
    for record in standard.to_pylist():
        for rule in rules:
            key = rule.key_of(record)
            if key is not None:
                rows.append((record[UNIQUE_ID], rule.name, key))
    rows.sort(key=lambda row: (row[0], row[1]))
    return pa.Table.from_arrays(
        [pa.array([row[i] for row in rows], f.type) for i, f in enumerate(KEY_SCHEMA)],
        schema=KEY_SCHEMA,
    )


def keys_in_duckdb(standard: pa.Table, rules: list[Rule]) -> pa.Table:
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
