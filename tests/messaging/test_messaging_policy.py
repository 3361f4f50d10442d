"""The contact policy: a validated document; quiet hours across midnight in the group's
time zone; the local day and month a cap counts in."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from siyu.errors import ValidationError
from siyu.messaging.policy import Policy, parse


def utc(shanghai: str) -> datetime:
    """A Shanghai wall-clock time as stored UTC (UTC+8, no daylight saving)."""
    return datetime.fromisoformat(shanghai) - timedelta(hours=8)


def test_quiet_hours_across_midnight_end_at_nine_local() -> None:
    p = Policy()
    # given 21:00-09:00 in Shanghai: a send at 23:30 goes at 09:00 the next morning
    assert p.out_of_quiet(utc("2030-01-07 23:30")) == utc("2030-01-08 09:00")
    # after midnight it goes the same morning
    assert p.out_of_quiet(utc("2030-01-08 02:00")) == utc("2030-01-08 09:00")
    # the edges: 21:00 is quiet, 20:59:59 and 09:00 are not
    assert p.out_of_quiet(utc("2030-01-07 21:00")) == utc("2030-01-08 09:00")
    assert p.out_of_quiet(utc("2030-01-07 20:59:59")) == utc("2030-01-07 20:59:59")
    assert p.out_of_quiet(utc("2030-01-08 09:00")) == utc("2030-01-08 09:00")
    # the month rolls over at local midnight (a new year here)
    assert p.out_of_quiet(utc("2030-12-31 22:00")) == utc("2031-01-01 09:00")


def test_quiet_hours_inside_a_day_and_none() -> None:
    noon = Policy(quiet_start=time(12, 0), quiet_end=time(14, 0))
    assert noon.out_of_quiet(utc("2030-01-07 13:00")) == utc("2030-01-07 14:00")
    assert noon.out_of_quiet(utc("2030-01-07 23:00")) == utc("2030-01-07 23:00")
    none = Policy(quiet_start=time(0, 0), quiet_end=time(0, 0))
    assert none.out_of_quiet(utc("2030-01-07 03:00")) == utc("2030-01-07 03:00")


def test_local_day_and_month_are_the_groups() -> None:
    p = Policy()
    # 00:30 on 1 February in Shanghai is still 31 January in UTC
    at = utc("2030-02-01 00:30")
    assert p.local_month(at) == (utc("2030-02-01 00:00"), utc("2030-03-01 00:00"))
    assert p.local_day(at) == (utc("2030-02-01 00:00"), utc("2030-02-02 00:00"))


@pytest.mark.parametrize(
    ("doc", "field", "rule"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"per_week": -1}, "per_week", "greater than or equal to 0"),
        ({"per_channel_month": {"fax": 1}}, "per_channel_month", "unknown channel 'fax'"),
        ({"quiet_start": "21:00:30"}, "policy", "whole minutes"),
        ({"per_guide_day": 1, "extra": 1}, "extra", "Extra inputs"),
    ],
)
def test_a_bad_policy_names_the_field_and_the_rule(doc: dict, field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(doc)
    assert caught.value.field == field
    assert rule in caught.value.rule


def test_defaults() -> None:
    p = parse({})
    assert (p.per_week, p.per_guide_day, p.per_channel_month) == (2, 1, {"wecom_group_send": 4})
    assert (p.quiet_start, p.quiet_end, p.timezone) == (time(21), time(9), "Asia/Shanghai")
