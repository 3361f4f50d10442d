"""The generator's traps for OneID (issue #15) are there, at their documented rates, and
labelled right in the truth: card numbers repeated across brands, mistyped phones and the
duplicate registrations they cause, names spelled several ways, shared family devices,
birth dates at their edges, and e-mails and addresses on member records."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import opencc
import pyarrow.parquet as pq
import pytest
from pypinyin import Style, pinyin

from siyu.demo.config import GeneratorConfig
from siyu.demo.generate import generate
from siyu.demo.ids import IdSpace, transpose, typo
from siyu.demo.truth import member_truth
from siyu.identity.evaluate import pairwise_scores

PERSONS = 20_000


@dataclass
class Brand:
    out: Path
    config: GeneratorConfig
    con: duckdb.DuckDBPyConnection

    def rows(self, sql: str) -> list[tuple]:  # type: ignore[type-arg]
        return self.con.execute(sql).fetchall()

    def one(self, sql: str) -> int:
        row = self.con.execute(sql).fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture(scope="module")
def brand(tmp_path_factory: pytest.TempPathFactory) -> Brand:
    out = tmp_path_factory.mktemp("traps")
    config = GeneratorConfig(members=PERSONS)
    generate(out, config)
    con = duckdb.connect()
    for name in ("members", "identities", "truth/members", "truth/persons", "truth/identity_truth"):
        view = name.replace("truth/", "truth_")
        con.execute(f"create view {view} as select * from read_parquet('{out}/{name}.parquet')")
    # each member record beside its truth and its person's true phone when it was keyed
    con.execute("""create view records as
        select m.*, t.person_id, t.record, t.phone_error, t.name_form, t.birth_form,
               t.city_form, p.name true_name, p.birth_date true_birth, p.household_id,
               case when p.phone_changed_at is not null and m.registered_at >= p.phone_changed_at
                    then p.second_phone else p.phone end true_phone
        from members m join truth_members t using (member_ref)
        join truth_persons p using (person_id)""")
    return Brand(out, config, con)


def near(count: int, n: int, p: float) -> bool:
    """`count` of `n` trials is within 4 standard deviations of rate `p`."""
    return abs(count - n * p) <= 4 * np.sqrt(n * p * (1 - p)) + 1


def test_every_member_record_has_its_true_person(brand: Brand) -> None:
    # when the truth of member records is read through the function the demo offers
    labels = member_truth(brand.out)
    refs = pq.read_table(brand.out / "members.parquet", columns=["member_ref"])
    # then it labels every record once, with a person of the truth
    assert sorted(labels) == sorted(refs["member_ref"].to_pylist())
    persons = set(pq.read_table(brand.out / "truth" / "persons.parquet")["person_id"].to_pylist())
    assert set(labels.values()) <= persons


def test_card_numbers_repeat_across_brands_on_different_persons(brand: Brand) -> None:
    # given each card number with the brands and persons that hold it
    numbers = brand.rows("""select card, count(distinct brand_id), count(distinct person_id)
        from records group by card""")
    shared = [r for r in numbers if r[1] > 1]
    # then one number is a card of several brands, and of different persons, often
    cards = sum(r[1] for r in numbers)
    in_shared = sum(r[1] for r in shared)
    assert len(shared) > 500
    assert sum(r[2] == r[1] for r in shared) >= 0.99 * len(shared)
    # at the rate the shared range gives: a card of brand b has the number of another
    # brand's card with probability 1 - prod(1 - N_b' / range)
    per_brand = dict(brand.rows("select brand_id, count(*) from records group by 1"))
    space = brand.config.card_range * PERSONS
    expected = sum(
        n * (1 - np.prod([1 - m / space for c, m in per_brand.items() if c != b]))
        for b, n in per_brand.items()
    )
    assert abs(in_shared - expected) <= 0.1 * expected, (in_shared, expected, cards)
    # and within one brand a number is one card
    assert brand.one("select count(*) - count(distinct (brand_id, card)) from members") == 0
    # and the identity truth tells them apart by brand
    owners = brand.rows("""select value, count(distinct person_id) from truth_identity_truth
        where type = 'card' group by value having count(*) > 1""")
    assert len(owners) == len(shared)
    assert sum(n >= 2 for _, n in owners) >= 0.99 * len(owners)


def test_mistyped_phones_are_one_substitution_or_one_adjacent_swap(brand: Brand) -> None:
    # given the records whose phone was mistyped at the till, and the true phone then
    rows = brand.rows("""select phone_error, phone, true_phone from records
        where phone_error in ('one_digit', 'adjacent_swap')""")
    assert rows
    for error, typed, true in rows:
        diff = [i for i, (a, b) in enumerate(zip(typed, true, strict=True)) if a != b]
        if error == "one_digit":
            # then exactly one digit differs
            assert len(diff) == 1, (typed, true)
        else:
            # or exactly two adjacent digits are swapped
            assert len(diff) == 2 and diff[1] == diff[0] + 1, (typed, true)
            assert typed[diff[0]] == true[diff[1]] and typed[diff[1]] == true[diff[0]]
        assert re.fullmatch(r"\+861[3-9]\d{9}", typed)
    # and no typo is anyone's real phone, nor another record's typo
    typos = [r[1] for r in rows]
    real = {
        p
        for (a, b) in brand.rows("select phone, second_phone from truth_persons")
        for p in (a, b)
        if p
    }
    assert len(set(typos)) == len(typos) and not set(typos) & real
    # and a record's other phones are right, or a household member's
    assert brand.one("select count(*) from records where phone_error = 'none' "
                     "and phone <> true_phone") == 0  # fmt: skip
    household = brand.rows("""select r.phone, p.person_id, r.person_id, p.household_id,
            r.household_id
        from records r join truth_persons p on p.phone = r.phone
        where r.phone_error = 'household_phone'""")
    assert household and all(o != s and h1 == h2 for _p, o, s, h1, h2 in household)


def test_mistyped_phones_and_duplicates_come_at_their_rates(brand: Brand) -> None:
    c = brand.config
    counts = dict(brand.rows("select record, count(*) from records group by 1"))
    by_error = dict(
        brand.rows("select phone_error, count(*) from records where record = 'card' group by 1")
    )
    # given the cards that could be registered again (keyed with the person's own phone)
    own = by_error["none"]
    # then duplicates come at their rates, of those cards
    assert near(counts["duplicate_registration"], own, c.duplicate_registration_rate)
    assert near(counts["typo_duplicate"], own, c.typo_duplicate_rate)
    # and 2-4% of till registrations carry a mistyped phone, a fifth of them as a swap
    errors = dict(brand.rows("select phone_error, count(*) from records group by 1"))
    mistyped = errors["one_digit"] + errors["adjacent_swap"]
    total = sum(counts.values())
    assert 0.02 <= mistyped / total <= 0.04, (mistyped, total)
    assert near(errors["adjacent_swap"], mistyped, c.typo_transposition_share)


def test_duplicates_are_one_person_with_their_card(brand: Brand) -> None:
    # given every duplicate record and the card of the same person and brand
    rows = brand.rows("""select d.record, d.person_id, o.person_id, d.card <> o.card,
            d.phone = o.phone, d.home_store_id <> o.home_store_id, d.registered_at > o.registered_at
        from records d join records o
          on o.person_id = d.person_id and o.brand_id = d.brand_id and o.record = 'card'
        where d.record <> 'card'""")
    n_dups = brand.one("select count(*) from records where record <> 'card'")
    # then each has exactly one such card: the truth makes them one person
    assert len(rows) == n_dups > 0
    for record, person, card_person, new_card, same_phone, _other_store, later in rows:
        assert person == card_person and new_card and later
        # a duplicate registration carries the right phone, a typo duplicate a wrong one
        # (unless the typo was refused as someone else's number: then it is right)
        if record == "duplicate_registration":
            assert same_phone
    typo_wrong = brand.one("""select count(*) from records where record = 'typo_duplicate'
                              and phone_error <> 'none'""")
    assert typo_wrong >= 0.95 * brand.one(
        "select count(*) from records where record = 'typo_duplicate'"
    )
    # and most duplicates were made at another store of the brand
    assert sum(r[5] for r in rows) >= 0.7 * len(rows)
    # and scored on member records: clustering by card number alone (no brand) merges
    # different persons; by (brand, card) it is exact but misses every duplicate
    records = brand.rows("select person_id, card, brand_id || card from records")
    truth = np.array([r[0] for r in records])
    by_number = pairwise_scores(np.array([r[1] for r in records]), truth)
    by_card = pairwise_scores(np.array([r[2] for r in records]), truth)
    assert by_number.precision < 0.2 and by_card.precision == 1.0
    assert by_card.true_pairs - by_card.true_positive_pairs >= n_dups


def test_name_variants_are_the_same_name_written_another_way(brand: Brand) -> None:
    t2s = opencc.OpenCC("t2s")
    rows = brand.rows("""select name_form, name, given_name, family_name, true_name, gender
        from records where name_form <> 'missing'""")
    seen: dict[str, int] = {}
    for form, name, given, family, true, gender in rows:
        seen[form] = seen.get(form, 0) + 1
        if form == "as_registered":
            assert name == true
        elif form == "traditional":
            # then traditional characters convert back to the person's simplified name
            assert name != true and t2s.convert(name) == true
        elif form == "homophone":
            # one character differs, with the same pinyin
            assert len(name) == len(true)
            assert sum(a != b for a, b in zip(name, true, strict=True)) == 1
            assert readings(name) & readings(true)
        elif form == "honorific":
            assert name == true_surname(true) + {"f": "女士", "m": "先生", "u": ""}[gender]
            assert given is None
        else:
            # a pinyin name: given then family name, or swapped (given_name holds the family)
            first, last = name.split(" ")
            surname = true_surname(true)
            assert spells(surname, last if form == "latin" else first)
            assert spells(true[len(surname) :], first if form == "latin" else last)
            if given is not None:
                assert (given, family) == (first, last)
        if given is not None and form in ("as_registered", "traditional", "homophone"):
            assert family + given == name
    assert {"traditional", "homophone", "honorific", "latin", "latin_swapped"} <= set(seen)


def test_name_variants_come_at_their_rates(brand: Brand) -> None:
    c = brand.config
    for duplicate, rate in ((False, c.name_variant_rate), (True, c.duplicate_name_variant_rate)):
        op = "<>" if duplicate else "="
        named, variants = brand.con.execute(f"""select count(*),
                count(*) filter (where name_form <> 'as_registered')
            from records where record {op} 'card' and name_form <> 'missing'""").fetchone()  # type: ignore[misc]
        assert near(variants, named, rate), (duplicate, variants, named)


def test_shared_family_devices_are_different_persons(brand: Brand) -> None:
    # given devices seen on the accounts of several persons
    rows = brand.rows("""select i.value, list(distinct t.person_id), list(distinct p.household_id)
        from identities i
        join truth_identity_truth t on t.type = i.linked_type and t.value = i.linked_value
        join truth_persons p on p.person_id = t.person_id
        where i.type = 'device_id' group by i.value having count(distinct t.person_id) > 1""")
    # then each is a family's: different persons of one household
    assert len(rows) > 20
    assert all(len(persons) >= 2 and len(households) == 1 for _, persons, households in rows)


def test_birth_dates_at_the_edges(brand: Brand) -> None:
    c = brand.config
    births = [r[0] for r in brand.rows("select birth_date from truth_persons")]
    known = [b for b in births if b is not None]
    # given persons born on 02-29, 12-31 and 01-01 at their rates
    leap = sum((b.month, b.day) == (2, 29) for b in known)
    edge = sum((b.month, b.day) in ((12, 31), (1, 1)) for b in known)
    assert leap >= 10 and near(leap, len(known), c.leap_day_birth_rate + 1 / 1461)
    assert near(edge, len(known), c.year_edge_birth_rate * (1 - c.leap_day_birth_rate) + 2 / 365)
    # then records carry the year alone, the day and month swapped, or nothing
    rows = brand.rows("select birth_form, birth_date, true_birth from records")
    forms: dict[str, int] = {}
    for form, recorded, true in rows:
        forms[form] = forms.get(form, 0) + 1
        if form == "as_registered":
            assert recorded == true
        elif form == "year_only":
            assert recorded == date(true.year, 1, 1)
        elif form == "day_month_swapped":
            assert recorded == date(true.year, true.day, true.month) != true
        else:
            assert recorded is None
    with_birth = sum(1 for _f, _r, t in rows if t is not None)
    assert near(forms["year_only"], with_birth, c.birth_placeholder_rate)
    assert 0 < forms["day_month_swapped"] <= with_birth * c.birth_swap_rate * 1.5


def test_emails_addresses_and_postcodes(brand: Brand) -> None:
    c = brand.config
    total = brand.one("select count(*) from records")
    # then e-mails are on their share of records, well formed, each a person's own
    emails = brand.rows("select email, count(distinct person_id) from records "
                        "where email is not null group by 1")  # fmt: skip
    n_email = brand.one("select count(*) from records where email is not null")
    # (a person gives an e-mail or not: records are not independent, hence a flat band)
    assert abs(n_email / total - c.email_rate * c.email_on_record_rate) < 0.02
    assert all(re.fullmatch(r"[a-z0-9]+@[a-z0-9]+\.(com|net)", e) for e, _ in emails)
    assert all(n == 1 for _, n in emails)
    # and addresses are China-style with a 6-digit postcode, shared by a household
    rows = brand.rows("select address, postcode, city, household_id from records "
                      "where address is not null")  # fmt: skip
    assert abs(len(rows) / total - c.address_rate * c.address_on_record_rate) < 0.04
    address = re.compile(r"(\w+省)?(\w+市)?\w+区\w+(路|大道)\d+号(\d+栋\d+室)?")
    assert all(address.fullmatch(a) for a, _p, _c, _h in rows)
    assert all(p is None or re.fullmatch(r"\d{6}", p) for _a, p, _c, _h in rows)
    per_household = brand.rows("""select household_id,
            count(distinct regexp_extract(address, '\\w+区.*'))
        from records where address is not null group by 1""")
    assert all(n == 1 for _, n in per_household)
    shared = brand.one("""select count(*) from (select household_id from records
        where address is not null group by 1 having count(distinct person_id) > 1)""")
    assert shared > 50


def test_a_typo_is_told_from_a_real_phone_by_inverting_the_permutation() -> None:
    # given the phones of 1,000 persons, their changed-to phones, and those of person 1,000
    ids = IdSpace(11, ["x"], members=1_000, card_range=3)
    pid = np.arange(1_001)
    primary, second = ids.primary_phone(pid), ids.second_phone(pid)
    # then the persons' phones are real, the next person's are not
    assert ids.is_real_phone(primary[:1_000]).all() and ids.is_real_phone(second[:1_000]).all()
    assert not ids.is_real_phone(primary[1_000:]).any()
    assert not ids.is_real_phone(second[1_000:]).any()
    # and a one-digit typo never is, whatever the digit
    for position in range(2, 11):
        wrong = typo(primary, np.full(len(pid), position), np.full(len(pid), 3))
        assert not ids.is_real_phone(wrong).any()
    # and a swap of adjacent digits changes exactly two neighbours
    swapped = transpose(primary, np.full(len(pid), 5))
    for a, b in zip(primary.tolist(), swapped.tolist(), strict=True):
        diff = [i for i, (x, y) in enumerate(zip(str(a), str(b), strict=True)) if x != y]
        assert len(diff) == 2 and diff[1] == diff[0] + 1 and diff[0] >= 2


def readings(name: str) -> set[str]:
    """Every toneless pinyin spelling of `name` (heteronyms included)."""
    out = {""}
    for options in pinyin(name, style=Style.NORMAL, heteronym=True):
        out = {o + r.replace("v", "yu") for o in out for r in options}
    return out


def spells(chinese: str, latin: str) -> bool:
    return latin.lower() in readings(chinese)


def true_surname(true: str) -> str:
    """The surname of a true (simplified) name: one character, or a known compound."""
    return true[:2] if true[:2] in ("欧阳", "司马", "上官") else true[:1]
