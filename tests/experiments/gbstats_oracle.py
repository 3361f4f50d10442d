"""GrowthBook's own engine (gbstats 0.8.0) on arm sums: the reference
test_stats_against_gbstats.py checks siyu's experiment statistics against.

gbstats 0.8.0 pins numpy<2 and pandas<2, so it lives in a venv of its own
(`make .venv-gbstats/.installed`) and this script runs there as a subprocess, with no
import of siyu. It reads a JSON list of cases on stdin and prints, per case, gbstats'
results at full precision (JSON writes a float's shortest repr, which reads back exactly).

A case is one of
    {"kind": "difference" | "sequential", "control": ARM, "treatment": ARM,
     "alpha": 0.05, "tuning": 5000}      (tuning for "sequential" only)
    {"kind": "srm", "counts": [...], "weights": [...]}
with ARM one of
    {"type": "mean", "n": N, "sum": S, "sum_squares": Q}
    {"type": "proportion", "n": N, "sum": S}
    {"type": "cuped", "post": ARM, "pre": ARM, "sum_products": P}
A comparison gives {"absolute": EST, "relative": EST, "control_mean", "treatment_mean",
"theta", "dof"} with EST {"estimate", "std_error", "ci_low", "ci_high", "p_value",
"error"}, and for CUPED arms also "relative_corrected" (below); an SRM check gives
{"p_value": P}.

"relative_corrected": gbstats 0.8.0 (the latest release on PyPI) takes the variance of a
relative CUPED lift as it does a plain one's, the delta method for a ratio of means with
the arms' adjusted variances. That is not the variance of (adjusted difference) / (control's
unadjusted mean): GrowthBook corrected it after 0.8.0 (growthbook/growthbook pull request
#3610, February 2025: "the in-production CUPED estimate of variance is wrong for relative
case", intervals too narrow), in `frequentist_variance_relative_cuped`, which siyu follows.
`CorrectedRelativeCuped` puts that variance, restated here from the delta method, into 0.8.0's
own test classes, which then give the interval and p-value from it as they do for any lift.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.gbstats import check_srm
from gbstats.models.statistics import (
    ProportionStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)


class CorrectedRelativeCuped:
    """The variance of a relative CUPED lift (b_adj - a_adj) / a, a and b the arms'
    unadjusted means, by the delta method: theta and the treatment's pre-period mean held,
    the control's gradient is (-b / a^2, theta / a) in its (post, pre) means. Any other
    lift keeps gbstats 0.8.0's variance."""

    stat_a: Any
    stat_b: Any
    relative: bool

    @property
    def variance(self) -> float:
        a, b = self.stat_a, self.stat_b
        if not (
            self.relative
            and isinstance(a, RegressionAdjustedStatistic)
            and isinstance(b, RegressionAdjustedStatistic)
        ):
            return super().variance  # type: ignore[misc]
        mean_a, mean_b, theta = a.unadjusted_mean, b.unadjusted_mean, a.theta
        treatment = b.variance / (b.n * mean_a**2)  # b.variance: the adjusted one
        control = (
            a.post_statistic.variance * mean_b**2 / mean_a**2
            - 2 * theta * a.covariance * mean_b / mean_a
            + theta**2 * a.pre_statistic.variance
        ) / (a.n * mean_a**2)
        return treatment + control


class CorrectedTwoSidedTTest(CorrectedRelativeCuped, TwoSidedTTest):
    pass


class CorrectedSequentialTwoSidedTTest(CorrectedRelativeCuped, SequentialTwoSidedTTest):
    pass


def statistic(arm: dict[str, Any]) -> Any:
    """A fresh gbstats statistic (a test sets theta on its CUPED statistics in place)."""
    if arm["type"] == "mean":
        return SampleMeanStatistic(n=arm["n"], sum=arm["sum"], sum_squares=arm["sum_squares"])
    if arm["type"] == "proportion":
        return ProportionStatistic(n=arm["n"], sum=arm["sum"])
    if arm["type"] == "cuped":
        post, pre = statistic(arm["post"]), statistic(arm["pre"])
        return RegressionAdjustedStatistic(
            n=post.n,
            post_statistic=post,
            pre_statistic=pre,
            post_pre_sum_of_products=arm["sum_products"],
            theta=0,
        )
    raise ValueError(f"unknown arm type {arm['type']!r}")


def lift(case: dict[str, Any], difference_type: str, corrected: bool) -> Any:
    """gbstats' two-sided test (fixed-horizon or sequential) of the case."""
    control, treatment = statistic(case["control"]), statistic(case["treatment"])
    if case["kind"] == "sequential":
        config = SequentialConfig(
            alpha=case["alpha"],
            difference_type=difference_type,
            sequential_tuning_parameter=case["tuning"],
        )
        seq = CorrectedSequentialTwoSidedTTest if corrected else SequentialTwoSidedTTest
        return seq(control, treatment, config)
    fixed = CorrectedTwoSidedTTest if corrected else TwoSidedTTest
    return fixed(
        control, treatment, FrequentistConfig(alpha=case["alpha"], difference_type=difference_type)
    )


def estimate(test: Any) -> dict[str, Any]:
    result = test.compute_result()
    return {
        "estimate": float(result.expected),
        "std_error": float(result.uplift.stddev),
        "ci_low": float(result.ci[0]),
        "ci_high": float(result.ci[1]),
        "p_value": float(result.p_value),
        "error": result.error_message,
    }


def compare(case: dict[str, Any]) -> dict[str, Any]:
    absolute = lift(case, "absolute", corrected=False)
    # the test replaces CUPED statistics by their post-period ones when theta is 0
    a, b = absolute.stat_a, absolute.stat_b
    out = {
        "absolute": estimate(absolute),
        "relative": estimate(lift(case, "relative", corrected=False)),
        "control_mean": float(a.mean),
        "treatment_mean": float(b.mean),
        "theta": float(a.theta) if isinstance(a, RegressionAdjustedStatistic) else 0.0,
        "dof": float(absolute.dof),
    }
    if case["control"]["type"] == "cuped":
        out["relative_corrected"] = estimate(lift(case, "relative", corrected=True))
    return out


def run(case: dict[str, Any]) -> dict[str, Any]:
    if case["kind"] == "srm":
        return {"p_value": float(check_srm(case["counts"], case["weights"]))}
    return compare(case)


def main() -> None:
    cases = json.load(sys.stdin)
    json.dump([run(case) for case in cases], sys.stdout)


if __name__ == "__main__":
    main()
