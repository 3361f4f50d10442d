"""The knee of the retention curve: the order count from which members stay.

Method (default "jump"): the knee is the k whose retention rate rises most over rate_{k-1},
among the k where both points have at least `min_support` eligible members. Retention by
order count climbs in a step (Pagoda: most leave after 1-3 orders, few after the 4th), so
the step itself is the signal. Points with little support are left out because the tail of
the curve is noisy: a handful of members with 9 orders can jump by 0.3 by chance.

Kneedle (Satopää et al., 2011) is computed beside it as evidence: k and the rates scaled
to [0, 1] (from rate_1 to the highest rate); the knee is the k where the scaled curve lies
furthest above the diagonal. It
agrees with the jump on a clean step, and it drifts when the curve rises gently after the
step, which is why it is not the default. Both are returned per k, so a reader can see
how clear the knee is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from siyu.analytics.retention import RetentionRow
from siyu.errors import ValidationError

KneeMethod = Literal["jump", "kneedle"]
DEFAULT_MIN_SUPPORT = 30


@dataclass(frozen=True)
class KneePoint:
    """Evidence at one k."""

    k: int
    rate: float | None
    eligible: int
    supported: bool  # eligible >= min_support
    jump: float | None  # rate_k - rate_{k-1}, when both points are supported
    kneedle: float | None  # scaled rate minus scaled k, over the supported prefix


@dataclass(frozen=True)
class Knee:
    """The knee (None if the curve has none) and the evidence behind it."""

    k: int | None
    method: KneeMethod
    min_support: int
    points: tuple[KneePoint, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "method": self.method,
            "min_support": self.min_support,
            "evidence": [
                {
                    "k": p.k,
                    "rate": _round(p.rate),
                    "eligible": p.eligible,
                    "supported": p.supported,
                    "jump": _round(p.jump),
                    "kneedle": _round(p.kneedle),
                }
                for p in self.points
            ],
        }


def find_knee(
    rows: Sequence[RetentionRow],
    method: KneeMethod = "jump",
    min_support: int = DEFAULT_MIN_SUPPORT,
) -> Knee:
    """The knee of one retention curve (rows of a single group, k ascending)."""
    if method not in ("jump", "kneedle"):
        raise ValidationError("method", f"must be 'jump' or 'kneedle', got {method!r}")
    if min_support < 1:
        raise ValidationError("min_support", f"must be >= 1, got {min_support}")
    ordered = sorted(rows, key=lambda r: r.k)
    supported = [r.rate is not None and r.eligible >= min_support for r in ordered]
    jumps: list[float | None] = [None] * min(len(ordered), 1)
    for i in range(1, len(ordered)):
        a, b = ordered[i - 1].rate, ordered[i].rate
        ok = supported[i - 1] and supported[i] and a is not None and b is not None
        jumps.append(b - a if ok and a is not None and b is not None else None)
    kneedle = _kneedle(ordered, supported)
    points = tuple(
        KneePoint(r.k, r.rate, r.eligible, s, j, d)
        for r, s, j, d in zip(ordered, supported, jumps, kneedle, strict=True)
    )
    if method == "jump":
        candidates = [(p.jump, -p.k, p.k) for p in points if p.jump is not None and p.jump > 0]
    else:
        candidates = [(p.kneedle, -p.k, p.k) for p in points if p.kneedle is not None]
        candidates = [c for c in candidates if c[0] > 0]
    # ties go to the smaller k: the earlier stage is the one to act on
    best = max(candidates)[2] if candidates else None
    return Knee(best, method, min_support, points)


def _kneedle(rows: Sequence[RetentionRow], supported: Sequence[bool]) -> list[float | None]:
    # only the leading run of supported points: a gap means the tail is too thin to scale by
    n = 0
    while n < len(rows) and supported[n]:
        n += 1
    out: list[float | None] = [None] * len(rows)
    if n < 3:
        return out
    rates = [r.rate for r in rows[:n] if r.rate is not None]
    ks = [r.k for r in rows[:n]]
    # scaled from the first point: Kneedle looks for the knee of a rising curve, and a
    # curve that never rises above where it starts has none
    low, high = rates[0], max(rates)
    if high <= low:
        return out
    for i in range(n):
        x = (ks[i] - ks[0]) / (ks[-1] - ks[0])
        y = (rates[i] - low) / (high - low)
        out[i] = y - x
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
