"""Coupon templates as stored: every version kept, the newest issued from.

A coupon keeps the version it was issued under (`coupons.template_id`), so the arithmetic
of a coupon never changes after it is held; the limits are read from the newest version,
so HQ can raise a campaign's budget while its coupons are out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from siyu.coupons.models import coupon_templates
from siyu.coupons.templates import CouponTemplate
from siyu.store.versions import Versions


@dataclass(frozen=True)
class Version:
    template_id: int
    version: int
    template: CouponTemplate


VERSIONS = Versions(coupon_templates, "template_id", CouponTemplate, "template", "coupon template")
parsed = VERSIONS.parsed


def save(engine: Engine, group_id: str, template: CouponTemplate, key_id: int | None) -> Version:
    """Store `template` as the next version of its code."""
    with engine.begin() as conn:
        return Version(*VERSIONS.save_in(conn, group_id, template.code, template, key_id))


def current(conn: Connection, group_id: str, code: str) -> Version:
    """The newest version of `code`; `NotFoundError` naming the field when there is none."""
    return Version(*VERSIONS.current(conn, group_id, code))


def issued_under(conn: Connection, template_id: int) -> CouponTemplate:
    """The version a coupon was issued under."""
    return VERSIONS.by_id(conn, template_id)


def newest(conn: Connection, group_id: str) -> list[Version]:
    """The newest version of every template of the group, by code."""
    return [Version(*found) for found in VERSIONS.newest(conn, group_id)]
