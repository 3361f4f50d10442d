"""truth/truth.json: the seed, the whole configuration, the churn curve, its knee, and how
to recover the knee from the data (a "retained if the next order comes within W days"
analysis), plus the conventions an evaluator needs to read the truth files right; and
`member_truth`, the true person of every member record, for scoring OneID on records."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import gammaincc

from siyu.demo.calendar import PROMOTIONS, WEEKDAY, Calendar
from siyu.demo.catalog import Catalog
from siyu.demo.config import GeneratorConfig

WINDOWS = (60, 90, 120, 150, 180)
CURVE_LENGTH = 20


def gap_beyond(config: GeneratorConfig, window_days: float) -> float:
    """P(a continuing buyer's next order comes more than `window_days` later).

    Gaps are gamma(shape, mean/shape) scaled by a person's log-normal rate; operational
    days are taken as calendar days (they agree on average).
    """
    z, w = hermegauss(40)
    s = config.gap_spread
    rate = np.exp(s * z - s * s / 2)
    theta = config.mean_gap_days / config.gap_shape * rate
    return float(np.sum(w * gammaincc(config.gap_shape, window_days / theta)) / np.sum(w))


def truth_json(
    config: GeneratorConfig, cal: Calendar, catalog: Catalog, rows: dict[str, int]
) -> dict[str, Any]:
    """The content of truth.json (deterministic: no timings, no paths)."""
    beyond = {w: gap_beyond(config, w) for w in WINDOWS}
    recommended = next((w for w in WINDOWS if beyond[w] <= 0.02), WINDOWS[-1])
    reach = 1.0
    curve = []
    for k in range(1, CURVE_LENGTH + 1):
        c = config.churn(k)
        curve.append(
            {
                "after_order": k,
                "churn": round(c, 6),
                "reach": round(reach, 6),
                "observed_churn_within_window": {
                    str(w): round(c + (1 - c) * beyond[w], 6) for w in WINDOWS
                },
            }
        )
        reach *= 1 - c
    return {
        "generator": "siyu.demo",
        "seed": config.seed,
        "config": config.to_json(),
        "knee": config.knee,
        "churn_curve": curve,
        "churn_curve_note": (
            "churn = P(no further order | k orders); from churn_before[0] at k=1 linearly to "
            "churn_before[1] at k=knee-1, churn_after from k=knee on. reach = P(at least k orders) "
            "for a buyer. Counted over paid and refunded orders of a true person across all "
            "brands and channels; cancelled orders are extra unpaid twins and not part of it."
        ),
        "retention_window": {
            "recommended_days": recommended,
            "gap_beyond_window": {str(w): round(b, 6) for w, b in beyond.items()},
            "method": (
                "For persons whose k-th order is at least W days before the window end, call "
                "them retained if their next order comes within W days. Observed churn is "
                "churn + (1 - churn) x gap_beyond_window[W]; the knee is the k after which "
                "it drops sharply. Orders after the window end are dropped (censoring): "
                "truth/persons.parquet has n_orders_uncensored and censored."
            ),
        },
        "calendar": {
            "timezone": "data timestamps are naive UTC; the brand lives in China (UTC+8)",
            "window_local": [
                cal.start.isoformat(),
                (cal.start + timedelta(days=cal.days)).isoformat(),
            ],
            "window_note": "local days from the first date, the second excluded",
            "weekday_factors_mon_to_sun": list(WEEKDAY),
            "promotions": [
                {
                    "month": p[0],
                    "day": p[1],
                    "code": p[2],
                    "factor": p[3],
                    "brand_id": catalog.brand_ids[p[6]] if p[6] >= 0 else None,
                }
                for p in PROMOTIONS
            ],
            "promotion_days": cal.promo_days(),
            "chinese_new_year": "x1.35 for 12 days before, x0.45 for the first 7 days",
        },
        "identity": {
            "identity_truth": (
                "one row per (type, brand_id, value) emitted anywhere (members, identities, "
                "order buyers, event identities), values spelled exactly as in the data; "
                "brand_id is set for cards only (the issuing brand)"
            ),
            "card_numbers": (
                "every brand numbers its cards from its own sequence in one shared format, so "
                "one card number is a card of different persons in different brands: a card "
                "is the pair (brand_id, card), never the number alone"
            ),
            "member_truth": (
                "truth/members.parquet: the true person_id of every row of members.parquet "
                "(by member_ref), and what is off in it: record (card, duplicate_registration: "
                "a second card of the brand with the right phone, typo_duplicate: a second card "
                "keyed with a mistyped phone), phone_error (one_digit, adjacent_swap, "
                "household_phone), name_form, birth_form, city_form"
            ),
            "emails_and_addresses": (
                "an e-mail belongs to one person (scored through member_truth, not listed in "
                "identity_truth); an address belongs to a household, shared by its members"
            ),
            "weak_identifiers": (
                "device_id and nickname can be seen on several persons (devices shared in a "
                "household, nicknames from a small pool); their truth is whoever saw it first "
                "(earliest observation, ties to the lower person_id). Never merge on them alone."
            ),
            "phone_hash": "sha256 hex (lower case) of the 11-digit national number, no +86",
            "phones": (
                "primary phones are unique per person; a changed-to phone is never anyone's "
                "primary; a typo at the till (one digit wrong or two adjacent digits swapped) "
                "never equals another real phone or another typo"
            ),
            "shared_phones": (
                "a member card registered with a household member's phone carries that "
                "member's phone; its truth is the phone's owner, so a resolver that trusts the "
                "card-phone link merges two persons: this is the realistic trap"
            ),
            "orders_by_phone": (
                "a POS order looked up by a shared phone has that phone's owner as buyer"
            ),
            "unlinked_accounts": (
                "marketplace accounts without phone hash, and WeChat accounts with neither a "
                "verified phone nor a bound card, are unlinkable fragments of their person"
            ),
        },
        "guides": {g: catalog.guide_skill[i] for i, g in enumerate(catalog.guide_ids)},
        "rows": rows,
    }


def write_truth_json(path: Path, content: dict[str, Any]) -> None:
    """Write truth.json (UTF-8, stable key order)."""
    path.write_text(json.dumps(content, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def member_truth(data_dir: Path) -> dict[str, int]:
    """member_ref -> true person id of every member record a generated brand holds,
    duplicates included: the labels `siyu.identity.evaluate.pairwise_scores` needs to
    score OneID over member records."""
    table = pq.read_table(
        data_dir / "truth" / "members.parquet", columns=["member_ref", "person_id"]
    )
    return dict(zip(table["member_ref"].to_pylist(), table["person_id"].to_pylist(), strict=True))
