"""Coupon templates as stored: every version kept, the newest issued from.

A coupon keeps the version it was issued under (`coupons.template_id`), so the arithmetic
of a coupon never changes after it is held; the limits are read from the newest version,
so HQ can raise a campaign's budget while its coupons are out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Connection, Engine, text

from siyu.coupons.models import coupon_templates
from siyu.coupons.templates import CouponTemplate
from siyu.errors import NotFoundError
from siyu.store.times import stored_now


@dataclass(frozen=True)
class Version:
    template_id: int
    version: int
    template: CouponTemplate


def save(engine: Engine, group_id: str, template: CouponTemplate, key_id: int | None) -> Version:
    """Store `template` as the next version of its code."""
    with engine.begin() as conn:
        number = int(
            conn.execute(
                text("""SELECT COALESCE(MAX(version), 0) + 1 FROM coupon_templates
                        WHERE group_id = :g AND code = :c"""),
                {"g": group_id, "c": template.code},
            ).scalar_one()
        )
        template_id = conn.execute(
            coupon_templates.insert()
            .values(
                group_id=group_id,
                code=template.code,
                version=number,
                body=template.model_dump_json(),
                key_id=key_id,
                created_at=stored_now(),
            )
            .returning(coupon_templates.c.template_id)
        ).scalar_one()
    return Version(int(template_id), number, template)


def current(conn: Connection, group_id: str, code: str) -> Version:
    """The newest version of `code`; `NotFoundError` naming the field when there is none."""
    row = conn.execute(
        text("""SELECT template_id, version, body FROM coupon_templates
                WHERE group_id = :g AND code = :c ORDER BY version DESC LIMIT 1"""),
        {"g": group_id, "c": code},
    ).first()
    if row is None:
        raise NotFoundError(f"template: no coupon template {code!r}")
    return Version(int(row.template_id), int(row.version), parsed(row.body))


def issued_under(conn: Connection, template_id: int) -> CouponTemplate:
    """The version a coupon was issued under (versions never change: cached by body)."""
    body = conn.execute(
        text("SELECT body FROM coupon_templates WHERE template_id = :t"), {"t": template_id}
    ).scalar_one()
    return parsed(body)


def newest(conn: Connection, group_id: str) -> list[Version]:
    """The newest version of every template of the group, by code."""
    rows = conn.execute(
        text("""SELECT t.template_id, t.version, t.body FROM coupon_templates t
                WHERE t.group_id = :g AND t.version = (
                  SELECT MAX(v.version) FROM coupon_templates v
                  WHERE v.group_id = t.group_id AND v.code = t.code)
                ORDER BY t.code"""),
        {"g": group_id},
    ).all()
    return [Version(int(r.template_id), int(r.version), parsed(r.body)) for r in rows]


@lru_cache(maxsize=1024)
def parsed(body: str) -> CouponTemplate:
    # A hot campaign redeems one version thousands of times: parse it once.
    return CouponTemplate.model_validate(json.loads(body))
