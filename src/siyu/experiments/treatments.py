"""What a variant names must exist and fit, checked when the experiment is saved and again
when it starts, before anything is written: a refusal names `variants[i].ref` and leaves
no assignment, no coupon and no planned send behind.

- `coupon`: the coupon template exists (404).
- `message`: the send exists (404) and targets exactly this experiment's variant (422),
  as it is the send's own target that the outbox reaches. Until the experiment starts it
  must be a draft (422): the start plans it once the variant has members, and a send
  planned before reaches no one.
- `campaign`: the campaign exists (404), has not ended (422), and what it gives is there
  (its coupon templates, 404; its lottery, as the campaign's own save checks it).
- `guide_task`: the HQ task (`guides.campaigns`, its code) exists (404); it was never
  assigned to its own target (422: its tasks would reach members outside the variant, the
  control among them), and no other variant, of this experiment or another, names it
  (422: a task's members are one variant's, or the arms would share a treatment). The
  start gives it to the variant's members (`guides.task_members`), and from then on the
  guides domain refuses to assign it to its target.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from siyu.campaigns import plan as campaign_plans
from siyu.coupons import catalog
from siyu.errors import NotFoundError, ValidationError
from siyu.guides.campaigns import load_task
from siyu.guides.task_members import assigned_to_target
from siyu.messaging import sends

if TYPE_CHECKING:
    from siyu.experiments.plan import Variant


def check(
    conn: Connection, group_id: str, code: str, variants: Sequence[Variant], started: bool
) -> None:
    """Refuse the first variant whose treatment cannot be delivered; `started`: the
    experiment has started before (its message sends are planned already)."""
    for i, v in enumerate(variants):
        field = f"variants[{i}].ref"
        if v.ref is None:
            continue
        if v.kind == "coupon":
            _template(conn, group_id, v.ref, field)
        elif v.kind == "message":
            _message(conn, group_id, code, v, field, started)
        elif v.kind == "campaign":
            _campaign(conn, group_id, v.ref, field)
        elif v.kind == "guide_task":
            _guide_task(conn, group_id, code, variants, i, field)


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


_OTHER_EXPERIMENTS = text(
    "SELECT code, body FROM experiments WHERE group_id = :g AND code <> :c ORDER BY code"
)


def _guide_task(
    conn: Connection, group_id: str, code: str, variants: Sequence[Variant], i: int, field: str
) -> None:
    ref = variants[i].ref
    assert ref is not None
    doc = load_task(conn, group_id, ref, missing_ok=True)
    if doc is None:
        raise NotFoundError(f"{field}: no guide task {ref!r}")
    since = assigned_to_target(conn, group_id, ref)
    if since is not None:
        raise ValidationError(
            field,
            f"guide task {ref} was assigned to its own target ({doc.target.kind} "
            f"{doc.target.value}) on {str(since)[:10]}: its tasks reach members outside this "
            "variant; author another task for the experiment",
            ref,
        )
    for other in variants[:i]:
        if other.kind == "guide_task" and other.ref == ref:
            raise ValidationError(
                field, f"guide task {ref} is variant {other.name}'s already: one variant's", ref
            )
    for row in conn.execute(_OTHER_EXPERIMENTS, {"g": group_id, "c": code}):
        for v in json.loads(row.body).get("variants", []):
            if v.get("kind") == "guide_task" and v.get("ref") == ref:
                raise ValidationError(
                    field,
                    f"guide task {ref} is the treatment of experiment {row.code} (variant "
                    f"{v.get('name')}): a task's members are one variant's; author another",
                    ref,
                )
