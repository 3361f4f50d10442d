"""`siyu receipts`: reward rules stored from validated documents, the review queue of
pending receipts, accept or reject one, and the settle pass that gives the rewards a
stopped process left out. Thin over `siyu.receipts`; amounts in yuan, member ids only
(a receipt's photo reference appears in --json as the API shows it to an admin, never in
the table)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from siyu.cli.common import (
    GroupOption,
    JsonOption,
    emit_json,
    errors,
    load_settings,
    open_store,
    out,
    read_document,
    yuan,
)
from siyu.errors import ValidationError

if TYPE_CHECKING:
    from siyu.receipts.records import Receipt
    from siyu.receipts.rules import RewardRule

REVIEWER = "cli"  # the `reviewer` a decision made here records (the API records its key)

app = typer.Typer(
    help="Receipts: reward rules, the review queue, accept or reject, settle rewards.",
    no_args_is_help=True,
)
rules_app = typer.Typer(
    help="Receipt reward rules: store a new version from a JSON file, list them.",
    no_args_is_help=True,
)
app.add_typer(rules_app, name="rules")
IdArgument = Annotated[int, typer.Argument(help="The receipt's id.")]


@rules_app.command("put")
def rules_put(
    file: Annotated[Path, typer.Argument(help="A receipt reward rule (JSON).")],
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a rule and store it as the next version of its code (a pending receipt
    keeps the version it was uploaded under); a refusal names the field, exit 2."""
    from siyu.receipts.rules import RewardRule, save
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors():
        rule = read_document(file, RewardRule, "rule")
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            stored = save(engine, group or settings.group_id, rule, None)
    if as_json:
        emit_json({"code": rule.code, "version": stored.version, "rule_id": stored.rule_id})
    else:
        out.print(f"{rule.code}: version {stored.version} stored")


@rules_app.command("list")
def rules_list(group: GroupOption = None, as_json: JsonOption = False) -> None:
    """The newest version of each rule: period, tiers, auto-accept."""
    from siyu.receipts.rules import newest
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        with engine.connect() as conn:
            found = newest(conn, group or settings.group_id)
    if as_json:
        emit_json(
            {
                "rules": [
                    {**v.rule.model_dump(mode="json"), "version": v.version, "rule_id": v.rule_id}
                    for v in found
                ]
            }
        )
        return
    if not found:
        out.print("No receipt rules.")
        return
    table = Table(title="Receipt reward rules")
    for column in ("code", "version", "name", "from", "until", "tiers", "auto-accept"):
        table.add_column(column, overflow="fold")
    for v in found:
        r = v.rule
        table.add_row(
            r.code,
            str(v.version),
            r.name_zh if settings.lang == "zh" else r.name_en,
            f"{r.starts_at:%Y-%m-%d}",
            f"{r.ends_at:%Y-%m-%d}",
            _tiers(r),
            _auto(r),
        )
    out.print(table)


@app.command("queue")
def queue_cmd(
    store: Annotated[str | None, typer.Option(help="Only this store's receipts.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pending receipts, newest first: what a reviewer decides on."""
    from siyu.receipts.records import listed
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors():
        if not 1 <= limit <= 500:
            raise ValidationError("--limit", f"from 1 to 500, got {limit}")
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            with engine.connect() as conn:
                found = listed(
                    conn,
                    group or settings.group_id,
                    status="pending",
                    stores=None if store is None else (store,),
                    limit=limit,
                )
    if as_json:
        emit_json({"receipts": [r.as_dict() for r in found]})
        return
    if not found:
        out.print("No receipts waiting for review.")
        return
    table = Table(title="Receipts waiting for review")
    for column in ("id", "member", "rule", "store", "number", "paid (yuan)", "bought", "why"):
        table.add_column(column, overflow="fold")
    for r in found:
        table.add_row(
            str(r.receipt_id),
            str(r.member_id),
            r.rule_code,
            r.store_id,
            r.receipt_no,
            yuan(r.amount_fen),
            f"{r.purchased_at:%Y-%m-%d %H:%M}",
            "; ".join(why.get("code", "") for why in r.reasons),
        )
    out.print(table)


@app.command("accept")
def accept_cmd(
    receipt_id: IdArgument, group: GroupOption = None, as_json: JsonOption = False
) -> None:
    """Accept a pending receipt; its tier's reward is given once."""
    _decide(receipt_id, "accepted", None, group, as_json)


@app.command("reject")
def reject_cmd(
    receipt_id: IdArgument,
    reason: Annotated[str, typer.Option(help="Why, for the member (required).")],
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject a pending receipt: its number is let go (the member may upload it again)
    and its places in the member's limits come back."""
    _decide(receipt_id, "rejected", reason, group, as_json)


def _decide(
    receipt_id: int, decision: str, reason: str | None, group: str | None, as_json: bool
) -> None:
    from siyu.receipts.review import decide
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        done = decide(
            engine,
            group or settings.group_id,
            receipt_id,
            decision,  # type: ignore[arg-type]
            REVIEWER,
            reason,
        )
    if as_json:
        emit_json(done.as_dict())
        return
    line = f"receipt {done.receipt_id}: {done.status}" + (" (already)" if done.replayed else "")
    out.print(line + _reward(done))


@app.command("settle")
def settle_cmd(group: GroupOption = None, as_json: JsonOption = False) -> None:
    """Give every accepted receipt's reward still missing (a process stopped between the
    acceptance and the reward); safe to run any time and twice."""
    from siyu.receipts.rewards import settle
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        done = settle(engine, group or settings.group_id)
    settled = [r.receipt_id for r in done if r.rewarded_at is not None]
    if as_json:
        emit_json({"settled": len(settled), "receipt_ids": settled})
    else:
        out.print(f"settled {len(settled):,} receipts")


def _reward(r: Receipt) -> str:
    given: list[Any] = []
    if r.reward_points:
        given.append(f"{r.reward_points:,} points")
    if r.coupon_id is not None:
        given.append(f"coupon {r.reward_coupon}")
    return f", rewarded {' and '.join(given)}" if given else ""


def _tiers(rule: RewardRule) -> str:
    def one(tier: Any) -> str:
        gives = [f"{tier.points:,} points"] if tier.points else []
        gives += [f"coupon {tier.coupon}"] if tier.coupon else []
        return f"¥{yuan(tier.min_paid_fen)}+: {' + '.join(gives)}"

    return "; ".join(one(t) for t in rule.tiers)


def _auto(rule: RewardRule) -> str:
    if rule.auto_accept is None:
        return "none (all reviewed)"
    home = ", home store only" if rule.auto_accept.home_store_only else ""
    return f"up to ¥{yuan(rule.auto_accept.max_amount_fen)}{home}"
