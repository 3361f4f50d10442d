"""Tags: definitions, manual tags with history, set-wise membership, and tags following
OneID merges; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import text
from tests.api.conftest import brand
from tests.conftest import Store

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.errors import NotFoundError, ValidationError
from siyu.identity import service as oneid
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.privacy import Vault
from siyu.segments import tags as svc


@pytest.fixture
def members(store: Store, vault: Vault, tmp_path: Path) -> dict[str, int]:
    import_directory(store.engine, vault, store.group_id, brand(tmp_path / "b"), tmp_path / "r")
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT source_ref, member_id FROM members WHERE group_id = :g"),
            {"g": store.group_id},
        ).all()
    return {ref: int(m) for ref, m in rows}


def _define(store: Store, slug: str, kind: str = "manual") -> svc.Tag:
    with store.engine.begin() as conn:
        return svc.define_tag(
            conn, store.group_id, slug, name_zh="贵宾", name_en="VIP", kind=kind, owner="key:1"
        )


def _history(store: Store, **where: object) -> list[tuple[str, int, str, str]]:
    with store.engine.connect() as conn:
        found = svc.history(conn, store.group_id, **where)  # type: ignore[arg-type]
    return [(c.slug, c.member_id, c.change, c.by) for c in reversed(found)]


def test_a_tag_is_defined_once_and_bad_fields_are_named(store: Store) -> None:
    tag = _define(store, "vip")
    assert (tag.kind, tag.refresh, tag.members, tag.definition) == ("manual", "manual", 0, {})
    with pytest.raises(ValidationError, match="already a tag") as taken:
        _define(store, "vip")
    assert taken.value.field == "slug"
    for slug in ("VIP", "a b", "", "x" * 65):
        with pytest.raises(ValidationError) as bad:
            _define(store, slug)
        assert bad.value.field == "slug"
    with pytest.raises(ValidationError) as kind:
        _define(store, "other", kind="magic")
    assert kind.value.field == "kind"
    # an automatic tag's slug taken by hand would stop the nightly refresh, from any face
    for kind_of in ("manual", "imported"):
        with pytest.raises(ValidationError, match="kept for the automatic tags") as auto:
            _define(store, "auto.read", kind=kind_of)
        assert auto.value.field == "slug"
    with store.engine.begin() as conn:
        with pytest.raises(ValidationError) as refresh:
            svc.update_tag(conn, store.group_id, "vip", refresh="weekly")
        assert refresh.value.field == "refresh"
        # a label or owner with a control character (NUL, a line break) names its field,
        # whichever face sent it (the console posts forms, not the API's schema)
        for field, value in (("name_zh", "贵\x00宾"), ("name_en", "V\nIP"), ("owner", "k\t1")):
            with pytest.raises(ValidationError, match="control characters") as control:
                svc.update_tag(conn, store.group_id, "vip", **{field: value})
            assert control.value.field == field
        updated = svc.update_tag(conn, store.group_id, "vip", name_en="Very important")
        assert updated.name_en == "Very important"
        svc.archive_tag(conn, store.group_id, "vip")
        assert svc.list_tags(conn, store.group_id) == []
        assert [t.slug for t in svc.list_tags(conn, store.group_id, archived=True)] == ["vip"]


def test_setting_twice_is_a_no_op_and_removing_an_absent_tag_too(
    store: Store, members: dict[str, int]
) -> None:
    _define(store, "vip")
    m1 = members["M1"]
    with store.engine.begin() as conn:
        assert svc.set_member_tag(conn, store.group_id, "vip", m1, "key:1") == "enter"
        assert svc.set_member_tag(conn, store.group_id, "vip", m1, "key:2") == "none"
        assert svc.set_member_tag(conn, store.group_id, "vip", m1, "key:2", "gold") == "value"
    with store.engine.connect() as conn:
        held = svc.member_tag_list(conn, store.group_id, m1)
    assert [(h.slug, h.value, h.set_by) for h in held] == [("vip", "gold", "key:2")]
    with store.engine.begin() as conn:
        assert svc.unset_member_tag(conn, store.group_id, "vip", m1, "key:3") is True
        assert svc.unset_member_tag(conn, store.group_id, "vip", m1, "key:3") is False
        assert svc.member_tag_list(conn, store.group_id, m1) == []
    assert _history(store, member_id=m1) == [
        ("vip", m1, "enter", "key:1"),
        ("vip", m1, "value", "key:2"),
        ("vip", m1, "leave", "key:3"),
    ]


def test_only_manual_live_tags_are_set_by_hand(store: Store, members: dict[str, int]) -> None:
    _define(store, "rule", kind="automatic")
    _define(store, "old")
    with store.engine.begin() as conn:
        svc.archive_tag(conn, store.group_id, "old")
        for slug, rule in (("rule", "is automatic"), ("old", "archived")):
            with pytest.raises(ValidationError, match=rule):
                svc.set_member_tag(conn, store.group_id, slug, members["M1"], "key:1")
        with pytest.raises(NotFoundError):
            svc.set_member_tag(conn, store.group_id, "nope", members["M1"], "key:1")
        with pytest.raises(ValidationError) as long:
            svc.set_member_tag(conn, store.group_id, "rule", members["M1"], "k", "v" * 300)
        assert long.value.field == "value"


def test_apply_membership_writes_only_the_deltas(store: Store) -> None:
    tag = _define(store, "big", kind="automatic")
    g = store.group_id
    with store.engine.begin() as conn:
        first = svc.apply_membership(conn, g, tag.tag_id, np.arange(1, 1001), value="a")
    assert first == svc.Applied(entered=1000, left=0, changed=0)
    # 1..100 leave, 1001..1200 enter, 901..1000 change value, 101..900 stay; repeats count once
    ids = pa.array(np.concatenate([np.arange(101, 1201), np.arange(101, 111)]))
    values = pa.array(["b" if 901 <= int(i) <= 1000 else "a" for i in ids.to_numpy()], pa.string())
    with store.engine.begin() as conn:
        second = svc.apply_membership(conn, g, tag.tag_id, ids, value=values, by="rule:1")
        again = svc.apply_membership(conn, g, tag.tag_id, ids, value=values, by="rule:1")
        total, page, after = svc.tag_members(conn, g, "big", limit=3)
        counts = dict(
            conn.execute(
                text(
                    "SELECT change, COUNT(*) FROM member_tag_history WHERE group_id = :g "
                    "GROUP BY change"
                ),
                {"g": g},
            ).all()
        )
    assert second == svc.Applied(entered=200, left=100, changed=100)
    assert again == svc.Applied(entered=0, left=0, changed=0)
    assert total == 1100 and [h.member_id for h in page] == [101, 102, 103] and after == 103
    assert counts == {"enter": 1200, "leave": 100, "value": 100}
    with store.engine.begin() as conn:
        emptied = svc.apply_membership(conn, g, tag.tag_id, np.array([], np.int64))
    assert emptied == svc.Applied(entered=0, left=1100, changed=0)


def test_tags_follow_a_merge_to_the_survivor_and_back_on_unmerge(
    store: Store, members: dict[str, int]
) -> None:
    g, m1, m2 = store.group_id, members["M1"], members["M2"]
    _define(store, "vip")
    _define(store, "vegan")
    _define(store, "rule", kind="automatic")
    rule = _define(store, "rule2", kind="automatic")
    with store.engine.begin() as conn:
        svc.set_member_tag(conn, g, "vip", m2, "key:1", "gold")
        svc.set_member_tag(conn, g, "vip", m1, "key:1", "silver")
        svc.set_member_tag(conn, g, "vegan", m2, "key:1")
        svc.apply_membership(conn, g, rule.tag_id, np.array([m2]))
    # when M2 merges into the older M1
    merge_id, survivor = oneid.merge_members(store.engine, g, m1, m2, "same person")
    assert survivor == m1
    with store.engine.connect() as conn:
        held = {h.slug: h for h in svc.member_tag_list(conn, g, m1)}
        absorbed = svc.member_tag_list(conn, g, m2)
    # then the survivor holds its own vip (its value kept) and M2's vegan; the automatic
    # tag waits for its refresh; the absorbed member holds nothing
    assert {s: h.value for s, h in held.items()} == {"vip": "silver", "vegan": None}
    assert held["vegan"].set_by == f"merge:{merge_id}"
    assert absorbed == []
    assert ("vegan", m1, "enter", f"merge:{merge_id}") in _history(store, member_id=m1)
    leaves = [c for c in _history(store, member_id=m2) if c[2] == "leave"]
    assert sorted(c[0] for c in leaves) == ["rule2", "vegan", "vip"]
    # settling again changes nothing
    from siyu.identity.tag_follow import follow_merges

    assert follow_merges(store.engine, g) == (0, 0)
    # an unmerge gives M2 back its manual tags; M1 keeps what it holds
    oneid.unmerge(store.engine, g, merge_id, "two people")
    assert follow_merges(store.engine, g) == (0, 0)
    with store.engine.connect() as conn:
        back = {h.slug: h.value for h in svc.member_tag_list(conn, g, m2)}
        kept = {h.slug for h in svc.member_tag_list(conn, g, m1)}
    assert back == {"vip": "gold", "vegan": None}
    assert kept == {"vip", "vegan"}
