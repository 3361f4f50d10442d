"""Stored segments on SQLite and PostgreSQL: definitions checked and versioned, evaluation
on the warehouse written back as members with enters and leaves, previews that write
nothing, and the size per day. The brand is the guides' (tests/guides/conftest.py): seven
members whose orders and stages are known, so each expected set is read off the table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from ibis import BaseBackend
from sqlalchemy import text
from tests.guides.conftest import AS_OF, PEOPLE, Brand, brand  # noqa: F401
from tests.segments.test_lists import _csv, _everyone

from siyu.analytics.engines import connect
from siyu.analytics.landing import land
from siyu.analytics.warehouse import Warehouse, open_warehouse
from siyu.auth.principal import Principal, Role
from siyu.errors import ConflictError, NotFoundError, ValidationError
from siyu.segments import stored
from siyu.segments.evaluate import (
    evaluate_segments,
    member_segments,
    preview_rule,
    size_history,
)
from siyu.segments.lists import ListView, MemberCriteria
from siyu.segments.tags import define_tag, set_member_tag


def rule(condition: dict[str, object]) -> dict[str, object]:
    return {"version": 1, "rule": condition}


THREE_PLUS = rule({"orders": {"within_days": 365, "count": {"gte": 3}}})
AT_RISK = rule({"attribute": "stage", "op": "eq", "value": "at_risk"})
# members with at least three orders in the last year, as the table above says
EXPECTED_THREE_PLUS = {
    ref
    for ref, (orders, _) in PEOPLE.items()
    if sum(1 for at, _, _ in orders if (AS_OF - datetime.fromisoformat(at)).days < 365) >= 3
}


@pytest.fixture
def backend() -> Iterator[BaseBackend]:
    con = connect("duckdb")
    yield con
    con.disconnect()


def landed(brand: Brand, backend: BaseBackend, tmp_path: Path) -> Warehouse:  # noqa: F811
    path = tmp_path / "wh.duckdb"
    land(brand.store.engine, brand.store.group_id, path)
    return open_warehouse(backend, path, brand.store.group_id)


def define(brand: Brand, slug: str, doc: dict[str, object], **fields: str) -> stored.StoredSegment:  # noqa: F811
    with brand.store.engine.begin() as conn:
        return stored.define_segment(
            conn,
            brand.store.group_id,
            slug,
            name_zh=fields.get("name_zh", "分群"),
            name_en=fields.get("name_en", "Segment"),
            rule=doc,
            owner="key:1",
        )


def vip(brand: Brand, member: str) -> None:  # noqa: F811
    """A manual tag `vip` held by `member`."""
    with brand.store.engine.begin() as conn:
        g = brand.store.group_id
        define_tag(conn, g, "vip", name_zh="贵宾", name_en="VIP", kind="manual", owner="k")
        set_member_tag(conn, g, "vip", brand.members[member], "key:1")


def members_of(brand: Brand, slug: str) -> set[str]:  # noqa: F811
    names = {v: k for k, v in brand.members.items()}
    with brand.store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT m.member_id FROM segment_members m JOIN segments s "
                "ON s.segment_id = m.segment_id WHERE s.group_id = :g AND s.slug = :s"
            ),
            {"g": brand.store.group_id, "s": slug},
        ).all()
    return {names[int(r[0])] for r in rows}


def history_of(brand: Brand, slug: str) -> list[tuple[str, str]]:  # noqa: F811
    names = {v: k for k, v in brand.members.items()}
    with brand.store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT h.member_id, h.change FROM segment_member_history h JOIN segments s "
                "ON s.segment_id = h.segment_id WHERE s.group_id = :g AND s.slug = :s "
                "ORDER BY h.change_id"
            ),
            {"g": brand.store.group_id, "s": slug},
        ).all()
    return [(names[int(r[0])], r[1]) for r in rows]


def test_definitions_are_checked_and_each_refusal_names_its_field(brand: Brand) -> None:  # noqa: F811
    define(brand, "three-plus", THREE_PLUS)
    cases: list[tuple[str, dict[str, object], str, str]] = [
        ("Bad Slug", THREE_PLUS, "slug", "a-z"),
        ("x" * 65, THREE_PLUS, "slug", "a-z"),
        ("ok", {"version": 2, "rule": {}}, "version", "must be 1"),
        ("ok", rule({"orders": {"within_days": 0}}), "rule.orders.within_days", "1 to 36500"),
        ("ok", rule({"segment": "nope"}), "rule", "does not exist"),
        ("ok", rule({"segment": "ok"}), "rule", "cannot nest itself"),
    ]
    for slug, doc, field, message in cases:
        with pytest.raises(ValidationError, match=message) as refused:
            define(brand, slug, doc)
        assert refused.value.field == field
    with pytest.raises(ValidationError) as name:
        define(brand, "ok", THREE_PLUS, name_zh=" ")
    assert name.value.field == "name_zh"
    with pytest.raises(ConflictError, match="already a segment"):
        define(brand, "three-plus", THREE_PLUS)
    with brand.store.engine.connect() as conn:
        assert [s.slug for s in stored.list_segments(conn, brand.store.group_id)] == ["three-plus"]


def test_nesting_may_not_loop_and_a_nested_segment_is_not_archived(brand: Brand) -> None:  # noqa: F811
    define(brand, "a", THREE_PLUS)
    define(brand, "b", rule({"all": [{"segment": "a"}, AT_RISK["rule"]]}))
    define(brand, "c", rule({"not": {"segment": "b"}}))
    g = brand.store.group_id
    with brand.store.engine.begin() as conn:
        with pytest.raises(ValidationError, match="a -> c -> b -> a"):
            stored.update_segment(conn, g, "a", by="key:1", rule=rule({"segment": "c"}))
        with pytest.raises(ConflictError, match="nested by b"):
            stored.archive_segment(conn, g, "a")
        stored.archive_segment(conn, g, "c")
        stored.archive_segment(conn, g, "b")
        assert stored.archive_segment(conn, g, "a").archived_at is not None
    with pytest.raises(ValidationError, match="archived"):
        define(brand, "d", rule({"segment": "a"}))


def test_a_changed_rule_is_a_new_version_and_the_same_rule_is_not(brand: Brand) -> None:  # noqa: F811
    define(brand, "s", THREE_PLUS)
    g = brand.store.group_id
    with brand.store.engine.begin() as conn:
        same = stored.update_segment(conn, g, "s", by="key:2", rule=THREE_PLUS, name_en="Three")
        assert (same.version, same.name_en) == (1, "Three")
        changed = stored.update_segment(conn, g, "s", by="key:2", rule=AT_RISK)
        assert (changed.version, changed.rule) == (2, AT_RISK)
        versions = stored.segment_versions_of(conn, g, "s")
        with pytest.raises(ValidationError) as version:
            stored.update_segment(conn, g, "s", by="key:2", version=7)
        assert version.value.field == "version"
        with pytest.raises(NotFoundError):
            stored.update_segment(conn, g, "nope", by="key:2", name_en="x")
    assert [(v.version, v.rule, v.created_by) for v in versions] == [
        (1, THREE_PLUS, "key:1"),
        (2, AT_RISK, "key:2"),
    ]


def test_evaluation_writes_members_and_only_the_deltas(
    brand: Brand,  # noqa: F811
    backend: BaseBackend,
    tmp_path: Path,
) -> None:
    wh = landed(brand, backend, tmp_path)
    vip(brand, "R2")  # the tag exists before a rule may name it
    define(brand, "three-plus", THREE_PLUS)
    define(brand, "at-risk", AT_RISK)
    define(
        brand, "at-risk-served", rule({"all": [{"segment": "at-risk"}, {"not": {"tag": "vip"}}]})
    )
    seen: list[str] = []
    done = evaluate_segments(
        brand.store.engine, backend, wh, as_of=AS_OF, progress=lambda s, i, n: seen.append(s)
    )
    # nested segments first, each once
    assert seen == ["at-risk", "at-risk-served", "three-plus"]
    assert {e.slug: (e.size, e.entered, e.left, e.version) for e in done} == {
        "at-risk": (3, 3, 0, 1),
        "at-risk-served": (2, 2, 0, 1),
        "three-plus": (len(EXPECTED_THREE_PLUS), len(EXPECTED_THREE_PLUS), 0, 1),
    }
    at_risk = {ref for ref, (_, stage) in PEOPLE.items() if stage == "at_risk"}
    assert members_of(brand, "at-risk") == at_risk == {"R1", "R2", "Q1"}
    assert members_of(brand, "at-risk-served") == at_risk - {"R2"}
    assert members_of(brand, "three-plus") == EXPECTED_THREE_PLUS == {"N3", "Y1"}
    # again, nothing changed: no deltas
    again = evaluate_segments(brand.store.engine, backend, wh, ["at-risk"], as_of=AS_OF)
    assert [(e.entered, e.left) for e in again] == [(0, 0)]
    # R1 comes back (loyal now) and F1 slips: one leave, one enter, in history
    brand.set_stage("R1", "loyal", 4, "2024-12-30")
    brand.set_stage("F1", "at_risk", 1, "2024-10-01")
    (third,) = evaluate_segments(brand.store.engine, backend, wh, ["at-risk"], as_of=AS_OF)
    assert (third.size, third.entered, third.left) == (3, 1, 1)
    assert members_of(brand, "at-risk") == {"R2", "Q1", "F1"}
    assert sorted(history_of(brand, "at-risk")) == sorted(
        [("R1", "enter"), ("R2", "enter"), ("Q1", "enter"), ("R1", "leave"), ("F1", "enter")]
    )
    days = size_history(brand.store.engine, brand.store.group_id, "at-risk")
    assert [(d.size, d.entered, d.left) for d in days] == [(3, 4, 1)]
    segments = member_segments(brand.store.engine, brand.store.group_id, brand.members["R2"])
    assert [s for s, _ in segments] == ["at-risk"]


def test_a_preview_counts_what_an_evaluation_would_and_writes_nothing(
    brand: Brand,  # noqa: F811
    backend: BaseBackend,
    tmp_path: Path,
) -> None:
    wh = landed(brand, backend, tmp_path)
    found = preview_rule(brand.store.engine, backend, wh, THREE_PLUS, as_of=AS_OF, sample=1)
    ids = sorted(brand.members[ref] for ref in EXPECTED_THREE_PLUS)
    assert (found.size, found.sample) == (len(ids), ids[:1])
    with brand.store.engine.connect() as conn:
        written = conn.execute(
            text("SELECT COUNT(*) FROM segment_evaluations WHERE group_id = :g"),
            {"g": brand.store.group_id},
        )
        assert written.scalar_one() == 0
    # the default as-of time is the data's end, the snapshot's: the latest order here
    latest = max(datetime.fromisoformat(at) for o, _ in PEOPLE.values() for at, _, _ in o)
    assert preview_rule(brand.store.engine, backend, wh, AT_RISK).as_of.date() == latest.date()
    with pytest.raises(ValidationError) as sample:
        preview_rule(brand.store.engine, backend, wh, THREE_PLUS, sample=1000)
    assert sample.value.field == "sample"
    with pytest.raises(ValidationError) as bad:
        preview_rule(
            brand.store.engine, backend, wh, rule({"attribute": "colour", "op": "eq", "value": 1})
        )
    assert bad.value.field.startswith("rule")


def test_a_segments_members_page_and_export_as_any_member_list(
    brand: Brand,  # noqa: F811
    backend: BaseBackend,
    tmp_path: Path,
) -> None:
    wh = landed(brand, backend, tmp_path)
    define(brand, "at-risk", AT_RISK)
    evaluate_segments(brand.store.engine, backend, wh, as_of=AS_OF)
    admin = Principal(1, brand.store.group_id, Role.ADMIN)
    # a guide key sees only its own members of the segment: G1 served R1 and R2, not Q1
    guide = Principal(2, brand.store.group_id, Role.GUIDE, guide_id="G1")
    at_risk = {brand.members[r] for r in ("R1", "R2", "Q1")}
    for who, expected in ((admin, at_risk), (guide, at_risk - {brand.members["Q1"]})):
        total, rows = _everyone(
            brand.store, brand.vault, who, MemberCriteria(segment="at-risk"), ListView(per=25)
        )
        assert total == len(expected) and {r.member_id for r in rows} == expected
        exported = _csv(brand.store, brand.vault, who, MemberCriteria(segment="at-risk"))
        assert {int(r["member_id"]) for r in exported} == expected
    # a tag's holders too; an unknown segment lists nobody
    vip(brand, "Y1")
    total, _ = _everyone(brand.store, brand.vault, admin, MemberCriteria(tag="vip"), ListView())
    assert total == 1
    total, _ = _everyone(brand.store, brand.vault, admin, MemberCriteria(segment="no"), ListView())
    assert total == 0


def test_a_rule_naming_an_undefined_tag_is_refused(
    brand: Brand,  # noqa: F811
    backend: BaseBackend,
    tmp_path: Path,
) -> None:
    # a typo, or an automatic tag before the first refresh, would hold nobody, silently
    typo = rule({"tag": {"slug": "vipp"}})
    with pytest.raises(ValidationError) as refused:
        define(brand, "typo", typo)
    assert refused.value.field == "rule" and "'vipp', which does not exist" in str(refused.value)
    wh = landed(brand, backend, tmp_path)
    with pytest.raises(ValidationError) as early:
        preview_rule(brand.store.engine, backend, wh, rule({"tag": {"slug": "auto.read"}}))
    assert "siyu tags refresh" in str(early.value)
    # once the tag exists, the same rule is taken
    vip(brand, "R1")
    assert define(brand, "vips", rule({"tag": {"slug": "vip"}})).slug == "vips"


def test_a_home_store_rule_holds_the_members_whose_store_it_is(
    brand: Brand,  # noqa: F811
    backend: BaseBackend,
    tmp_path: Path,
) -> None:
    # given every member of the brand at home in S1, but one moved to S2 and one with none
    wh = landed(brand, backend, tmp_path)
    everyone = sorted(brand.members.values())
    moved, homeless = everyone[0], everyone[1]
    with brand.store.engine.begin() as conn:
        for member, store in ((moved, "S2"), (homeless, None)):
            conn.execute(
                text(
                    "UPDATE members SET home_store_id = :s WHERE group_id = :g AND member_id = :m"
                ),
                {"s": store, "g": brand.store.group_id, "m": member},
            )

    def held(op: str, value: object) -> list[int]:
        condition = {"attribute": "home_store_id", "op": op, "value": value}
        found = preview_rule(brand.store.engine, backend, wh, rule(condition), AS_OF, 100)
        assert found.size == len(found.sample)
        return found.sample

    # then a rule on the home store holds exactly the members whose store it is, as the
    # member list of that store does (`MemberCriteria.store`)
    assert held("eq", "S1") == everyone[2:]
    assert held("in", ["S1", "S2"]) == [moved, *everyone[2:]]
    # and a member without a home store is in no store's and not in "not S1" either
    assert held("ne", "S1") == [moved]


def test_an_orders_rule_scoped_to_a_guide_holds_the_members_it_sold_to(
    brand: Brand,  # noqa: F811
    backend: BaseBackend,
    tmp_path: Path,
) -> None:
    # given the brand's orders, some carrying the shopping guide who sold them
    wh = landed(brand, backend, tmp_path)
    with brand.store.engine.connect() as conn:
        sold = conn.execute(
            text(
                "SELECT guide_id, member_id, COUNT(*) FROM orders WHERE group_id = :g "
                "AND guide_id IS NOT NULL AND status <> 'cancelled' GROUP BY guide_id, member_id"
            ),
            {"g": brand.store.group_id},
        ).all()
    guides = sorted({g for g, _, _ in sold})
    assert guides

    def held(condition: dict[str, object]) -> list[int]:
        found = preview_rule(brand.store.engine, backend, wh, rule(condition), AS_OF, 100)
        return found.sample

    # then each guide's scope holds the members with an order it sold (the guide's sales
    # list, `MemberCriteria.sold_by`), and two orders of it the members with two
    for guide in guides:
        want = sorted(m for g, m, _ in sold if g == guide)
        assert held({"orders": {"guide_id": [guide]}}) == want, guide
        twice = sorted(m for g, m, n in sold if g == guide and n >= 2)
        assert held({"orders": {"guide_id": [guide], "count": {"gte": 2}}}) == twice, guide
    # and a guide who sold nothing holds no one
    assert held({"orders": {"guide_id": ["G-nobody"]}}) == []
