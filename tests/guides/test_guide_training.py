"""Training content on SQLite and PostgreSQL: an item needs a url or a body and names bad
fields; a guide marks it done once (again is a no-op); HQ reads completions over the
item's audience (per class audiences: tests/guides/test_guide_programme.py)."""

from __future__ import annotations

import pytest
from tests.guides.conftest import Brand

from siyu.errors import ValidationError
from siyu.guides.errors import TrainingNotFound
from siyu.guides.training import (
    complete,
    parse_item,
    save_item,
    training_progress,
)


def test_items_are_validated() -> None:
    with pytest.raises(ValidationError) as empty:
        parse_item({"code": "t1", "title_zh": "话术", "title_en": "Script"})
    assert "url or a body" in empty.value.rule
    with pytest.raises(ValidationError) as plain:
        parse_item({"code": "t1", "title_zh": "a", "title_en": "a", "url": "http://x.cn"})
    assert plain.value.field == "url"
    with pytest.raises(ValidationError) as klass:
        parse_item({"code": "t1", "title_zh": "a", "title_en": "a", "body": "b", "for_class": "D"})
    assert klass.value.field == "for_class"


def test_completion_per_guide_and_rate(brand: Brand) -> None:
    engine, g = brand.store.engine, brand.store.group_id
    save_item(
        engine,
        g,
        parse_item(
            {
                "code": "sop-call",
                "title_zh": "回访电话 SOP",
                "title_en": "Call SOP",
                "body": "先问好",
                "for_class": "B",
            }
        ),
    )
    assert complete(engine, g, "G1", "sop-call") is True
    assert complete(engine, g, "G1", "sop-call") is False
    with pytest.raises(TrainingNotFound):
        complete(engine, g, "G1", "nope")
    with engine.connect() as conn:
        for_g1 = training_progress(conn, g, "G1")
        for_g2 = training_progress(conn, g, "G2")
    (item,) = for_g1
    # nobody is classed yet: class B has no guide, so G1's completion is outside the rate
    assert (item.code, item.completed, item.guides, item.outside) == ("sop-call", 0, 0, 1)
    assert item.by_class["-"] == (1, 2)
    assert item.done_at is not None and for_g2[0].done_at is None
