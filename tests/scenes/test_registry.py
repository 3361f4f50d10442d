"""The QR code registry on SQLite and PostgreSQL: WeChat's limits at their edges (scene
strings of 64 characters, temporary codes of 30 days, the 100,000th permanent code),
idempotent creation, archiving; and two HQ users racing for the last permanent slot."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from tests.conftest import Store
from tests.scenes.helpers import T0, permanent

from siyu.errors import NotFoundError, ValidationError
from siyu.importer.service import ensure_group
from siyu.scenes import registry
from siyu.scenes.errors import SceneExists, SceneLimitReached


def test_scene_strings_of_one_to_64_visible_characters(store: Store) -> None:
    # given scene strings at and past WeChat's edges
    assert permanent(store.engine, store.group_id, "a" * 64).scene == "a" * 64
    assert permanent(store.engine, store.group_id, "门店" * 32).kind == "permanent"
    assert permanent(store.engine, store.group_id, "x").scene == "x"
    # then 65 characters, none, a control character or a space are refused by name
    for bad, rule in [
        ("a" * 65, "1 to 64 characters, got 65"),
        ("", "1 to 64 characters, got 0"),
        ("a\tb", "visible characters only"),
        ("a\x00b", "visible characters only"),
        ("poster 1", "visible characters only"),
    ]:
        with pytest.raises(ValidationError) as refused:
            permanent(store.engine, store.group_id, bad)
        assert refused.value.field == "scene" and rule in refused.value.rule
    assert store.count("qr_scenes") == 3


def test_temporary_codes_live_at_most_30_days(store: Store) -> None:
    # when a temporary code ends exactly 30 days after it is created, it is made
    code = registry.create(
        store.engine,
        store.group_id,
        "t-30d",
        "temporary",
        expires_at=T0 + timedelta(days=30),
        at=T0,
    )
    assert code.expires_at == (T0 + timedelta(days=30)).replace(tzinfo=None)
    # one second more, no end, an end in the past, or an end on a permanent code: refused
    cases = [
        ("temporary", T0 + timedelta(days=30, seconds=1), "at most 30 days"),
        ("temporary", None, "required for a temporary code"),
        ("temporary", T0, "after the code is created"),
        ("permanent", T0 + timedelta(days=1), "a permanent code does not expire"),
    ]
    for kind, end, rule in cases:
        with pytest.raises(ValidationError) as refused:
            registry.create(store.engine, store.group_id, "t-bad", kind, expires_at=end, at=T0)
        assert refused.value.field == "expires_at" and rule in refused.value.rule
    with pytest.raises(ValidationError) as refused:
        registry.create(store.engine, store.group_id, "k", "forever", at=T0)
    assert refused.value.field == "kind"
    # temporary codes take no permanent slot
    with store.engine.connect() as conn:
        assert registry.permanent_used(conn, store.group_id) == 0


def _set_permanent_used(engine: Engine, group_id: str, used: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO qr_scene_counters (group_id, counter, used)
                    VALUES (:g, 'permanent', :n)"""),
            {"g": group_id, "n": used},
        )


def test_the_100000th_permanent_code_is_the_last(store: Store) -> None:
    # given a group that has made 99,999 permanent codes
    _set_permanent_used(store.engine, store.group_id, 99_999)
    # when it makes one more, that is the 100,000th
    permanent(store.engine, store.group_id, "last")
    with store.engine.connect() as conn:
        assert registry.permanent_used(conn, store.group_id) == 100_000
    # then the next is refused and leaves no code behind
    with pytest.raises(SceneLimitReached) as refused:
        permanent(store.engine, store.group_id, "one-too-many")
    assert refused.value.code == "scene_limit_reached" and "100,000" in str(refused.value)
    with pytest.raises(NotFoundError):
        registry.get(store.engine, store.group_id, "one-too-many")
    # archiving gives no slot back (WeChat never takes a permanent code back)
    registry.archive(store.engine, store.group_id, "last")
    with pytest.raises(SceneLimitReached):
        permanent(store.engine, store.group_id, "one-too-many")
    # a temporary code is still made, and asking for the last one again answers it
    registry.create(
        store.engine, store.group_id, "tmp", "temporary", expires_at=T0 + timedelta(days=7), at=T0
    )
    assert permanent(store.engine, store.group_id, "last").scene == "last"
    assert store.count("qr_scenes") == 2


def test_create_answers_the_same_code_and_refuses_another(store: Store) -> None:
    first = permanent(store.engine, store.group_id, "S1-door", store_id="S1", poster="door")
    again = permanent(store.engine, store.group_id, "S1-door", store_id="S1", poster="door")
    assert again == first
    with store.engine.connect() as conn:
        assert registry.permanent_used(conn, store.group_id) == 1  # counted once
    with pytest.raises(SceneExists):
        permanent(store.engine, store.group_id, "S1-door", store_id="S2")
    with pytest.raises(ValidationError) as refused:
        permanent(store.engine, store.group_id, "x", shelf="A")  # type: ignore[arg-type]
    assert refused.value.field == "shelf"


def test_list_and_archive(store: Store) -> None:
    for scene, campaign in [("a", "spring"), ("b", "spring"), ("c", "autumn")]:
        permanent(store.engine, store.group_id, scene, campaign=campaign)
    archived = registry.archive(store.engine, store.group_id, "b", at=T0 + timedelta(days=1))
    assert archived.archived_at == (T0 + timedelta(days=1)).replace(tzinfo=None)
    # archiving twice keeps the first time
    assert registry.archive(store.engine, store.group_id, "b").archived_at == archived.archived_at
    listed = registry.list_scenes(store.engine, store.group_id)
    assert [s.scene for s in listed] == ["a", "c"]
    spring = registry.list_scenes(store.engine, store.group_id, campaign="spring", archived=True)
    assert [s.scene for s in spring] == ["a", "b"]
    assert [s.scene for s in registry.list_scenes(store.engine, store.group_id, after="a")] == ["c"]
    with pytest.raises(NotFoundError):
        registry.archive(store.engine, store.group_id, "zzz")


@pytest.mark.postgres
def test_two_creates_race_for_the_last_permanent_slot(pg_engine: Engine) -> None:
    # given a group one permanent code short of WeChat's limit
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(pg_engine, group)
    _set_permanent_used(pg_engine, group, 99_999)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def create(scene: str) -> None:
        barrier.wait()
        try:
            permanent(pg_engine, group, scene)
            results[scene] = "made"
        except SceneLimitReached as refused:
            results[scene] = refused.code

    # when two HQ users create different codes at once
    threads = [threading.Thread(target=create, args=(s,)) for s in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then exactly one is made, the counter stops at 100,000, and no other row remains
    assert sorted(results.values()) == ["made", "scene_limit_reached"]
    with pg_engine.connect() as conn:
        assert registry.permanent_used(conn, group) == 100_000
        made = conn.execute(
            text("SELECT scene FROM qr_scenes WHERE group_id = :g"), {"g": group}
        ).scalars()
        assert list(made) == [s for s, r in results.items() if r == "made"]
