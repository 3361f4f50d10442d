"""What a variant names must exist and fit, checked when the experiment is saved and again
when it starts, before anything is written: a refusal names `variants[i].ref` (or `.kind`)
and leaves no assignment, no coupon and no planned send behind.

- `coupon`: the coupon template exists (404).
- `message`: the send exists (404) and targets exactly this experiment's variant (422),
  as it is the send's own target that the outbox reaches. Until the experiment starts it
  must be a draft (422): the start plans it once the variant has members, and a send
  planned before reaches no one.
- `campaign`: the campaign exists (404), has not ended (422), and what it gives is there
  (its coupon templates, 404; its lottery, as the campaign's own save checks it).
- `guide_task`: refused (422). The guides domain makes follow-up tasks only from the
  lifecycle stages, for the guide who last served the member, and its generator closes
  every live task the stages do not call for; it has no task HQ sets for a member
  (issue #19). A task written here would be closed at the next generation, so it is not
  written, and the experiment says so rather than assign members to a treatment nobody
  delivers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from siyu.campaigns import plan as campaign_plans
from siyu.coupons import catalog
from siyu.errors import NotFoundError, ValidationError
from siyu.messaging import sends

if TYPE_CHECKING:
    from siyu.experiments.plan import Variant

GUIDE_TASKS_NOT_YET = (
    "guide tasks cannot be delivered yet: the guides domain makes follow-up tasks from the "
    "lifecycle stages only and has no task HQ sets for a member (issue #19); give a "
    "message or a campaign instead"
)


def check(
    conn: Connection, group_id: str, code: str, variants: Sequence[Variant], started: bool
) -> None:
    """Refuse the first variant whose treatment cannot be delivered; `started`: the
    experiment has started before (its message sends are planned already)."""
    for i, v in enumerate(variants):
        field = f"variants[{i}].ref"
        if v.kind == "guide_task":
            raise ValidationError(f"variants[{i}].kind", GUIDE_TASKS_NOT_YET, v.kind)
        if v.ref is None:
            continue
        if v.kind == "coupon":
            _template(conn, group_id, v.ref, field)
        elif v.kind == "message":
            _message(conn, group_id, code, v, field, started)
        elif v.kind == "campaign":
            _campaign(conn, group_id, v.ref, field)


def _template(conn: Connection, group_id: str, ref: str, field: str) -> None:
    try:
        catalog.current(conn, group_id, ref)
    except NotFoundError:
        raise NotFoundError(f"{field}: no coupon template {ref!r}") from None


def _message(
    conn: Connection, group_id: str, code: str, v: Variant, field: str, started: bool
) -> None:
    assert v.ref is not None
    try:
        found = sends.load(conn, group_id, v.ref)
    except NotFoundError:
        raise NotFoundError(f"{field}: no send {v.ref!r}") from None
    target = found.send.target
    if target.experiment != code or target.variant != v.name:
        given = ", ".join(f"{k} {val}" for k, val in target.model_dump(exclude_none=True).items())
        raise ValidationError(
            field,
            f"send {v.ref} must target experiment {code} variant {v.name}; it targets {given}",
            v.ref,
        )
    if not started and found.status != "draft":
        raise ValidationError(
            field,
            f"send {v.ref} is {found.status}: a message variant's send is planned by the "
            "experiment's start, once its variant has members, so it stays a draft until then",
            v.ref,
        )


def _campaign(conn: Connection, group_id: str, ref: str, field: str) -> None:
    try:
        found = campaign_plans.load(conn, group_id, ref)
    except NotFoundError:
        raise NotFoundError(f"{field}: no campaign {ref!r}") from None
    if found.status == "ended":
        raise ValidationError(field, f"campaign {ref} has ended: it gives nothing more", ref)
    for template in found.plan.coupons:
        _template(conn, group_id, template, f"{field} (campaign {ref})")
    campaign_plans.check_lottery(conn, group_id, found.plan)
