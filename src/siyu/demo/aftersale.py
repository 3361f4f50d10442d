"""After the sale: cancelled (unpaid) twins of some online orders, and refunds.

Cancelled twins are extra orders, placed minutes before the paid one; they are not part
of the churn curve. About `refund_rate` of paid orders are refunded, whole (the order's
status becomes refunded) or one line, within ten days and inside the window.
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from siyu.demo import words
from siyu.demo.calendar import DAY, Calendar
from siyu.demo.config import GeneratorConfig
from siyu.demo.facts import CANCEL_SLOT, CANCELLED, PAID, REFUNDED, Lines, Orders, Refunds
from siyu.demo.ids import POS
from siyu.demo.rand import I64, Rng, group_starts, rank_in_group


def add_cancelled(
    rng: Rng, config: GeneratorConfig, cal: Calendar, pid: I64, o: Orders, lines: Lines
) -> tuple[Orders, Lines]:
    """Add an unpaid, cancelled twin shortly before some online orders."""
    m = len(o.person)
    keys = (pid[o.person], o.slot)
    twin = (o.channel != POS) & rng.flag("cancel", config.cancel_rate, *keys)
    at = o.ordered_at - 300 - rng.below("cancel_before", 7200, *keys)
    src = np.flatnonzero(twin & (at >= cal.start_s))
    override = {
        "slot": o.slot[src] + CANCEL_SLOT,
        "ordered_at": at[src],
        "paid_at": np.full(len(src), -1),
        "status": np.full(len(src), CANCELLED),
        "paid": np.zeros(len(src), dtype=np.int64),
    }
    merged = {
        f.name: np.concatenate([getattr(o, f.name), override.get(f.name, getattr(o, f.name)[src])])
        for f in fields(Orders)
    }
    perm = np.lexsort((merged["ordered_at"], merged["person"]))
    new_pos = np.empty_like(perm)
    new_pos[perm] = np.arange(len(perm))
    orders = Orders(**{name: a[perm] for name, a in merged.items()})

    n_lines = np.bincount(lines.order, minlength=m)
    counts = n_lines[src]
    li = np.repeat(group_starts(n_lines)[src], counts) + rank_in_group(counts)
    l_order = new_pos[np.concatenate([lines.order, m + np.repeat(np.arange(len(src)), counts)])]
    line_no = np.concatenate([lines.line_no, lines.line_no[li]])
    lperm = np.lexsort((line_no, l_order))
    return orders, Lines(
        order=l_order[lperm],
        line_no=line_no[lperm],
        sku=np.concatenate([lines.sku, lines.sku[li]])[lperm],
        qty=np.concatenate([lines.qty, lines.qty[li]])[lperm],
        unit=np.concatenate([lines.unit, lines.unit[li]])[lperm],
        amount=np.concatenate([lines.amount, lines.amount[li]])[lperm],
    )


def refund(
    rng: Rng, config: GeneratorConfig, cal: Calendar, pid: I64, o: Orders, lines: Lines
) -> tuple[Orders, Refunds]:
    """Refund ~refund_rate of paid orders, whole (status refunded) or one line."""
    m = len(o.person)
    keys = (pid[o.person], o.slot)
    n_lines = np.bincount(lines.order, minlength=m).astype(np.int64)
    at = o.paid_at + (rng.uniform("refund_after", 0.1, 10.0, *keys) * DAY).astype(np.int64)
    hit = (o.status == PAID) & rng.flag("refund", config.refund_rate, *keys) & (at < cal.end_s)
    full = (n_lines == 1) | rng.flag("refund_full", 0.6, *keys)
    pick = rng.below("refund_line", np.maximum(n_lines, 1), *keys)
    li = np.minimum(group_starts(n_lines) + pick, max(len(lines.order) - 1, 0))
    idx = np.flatnonzero(hit)
    full_i, li_i = full[idx], li[idx]
    refunds = Refunds(
        order=idx,
        refunded_at=at[idx],
        amount=np.where(full_i, o.paid[idx], np.minimum(lines.amount[li_i], o.paid[idx])),
        line_no=np.where(full_i, -1, pick[idx] + 1),
        qty=np.where(full_i, -1, lines.qty[li_i]),
        reason=rng.below("refund_reason", len(words.REFUND_REASONS), *(k[idx] for k in keys)),
    )
    status = o.status.copy()
    status[idx[full_i]] = REFUNDED
    return replace(o, status=status), refunds
