"""The experiment statistics, checked against independent computations.

- GrowthBook's engine (gbstats): its own tests' inputs and expected numbers
  (growthbook/growthbook, packages/stats/tests/frequentist/test_tests.py and
  packages/stats/tests/test_gbstats.py). Those tests print most numbers to 5 decimals, so
  matching every printed digit is agreement within 5e-6; where they print full precision
  (their one-sided tests, the SRM p-value to 9 decimals) we assert 1e-9. These are checks
  of the published numbers; the full-precision comparison of every statistic with gbstats
  itself (0.8.0, run in its own venv) lives in test_stats_against_gbstats.py.
- statsmodels: Welch's t on the raw arrays (weightstats), and CUPED against an OLS
  regression of the metric on treatment and the centred covariate.
- Seeded simulations: under repeated peeking the sequential interval keeps its coverage
  and the fixed-horizon one does not; at the demo experiment's size (140 per arm, rare
  buyers, skewed baskets) the fixed-horizon intervals keep theirs.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as scipy_stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from siyu.campaigns.assignment import BUCKETS, bucket, in_holdout
from siyu.errors import ValidationError
from siyu.experiments.stats import (
    ArmSums,
    CupedSums,
    Estimate,
    arm_sums,
    cuped,
    cuped_sums,
    difference,
    pooled_theta,
    sequential,
    srm,
)

# gbstats' test fixtures: SampleMeanStatistic(sum, sum_squares, n)
GB_A = ArmSums(3407, 1396.87, 52377.9767)
GB_A3000 = ArmSums(3000, 1396.87, 52377.9767)
GB_B = ArmSums(3461, 2422.7, 134698.29)


def printed(value: float, expected: float, decimals: int = 5) -> None:
    """`value` shows as gbstats' test prints it (rounded to `decimals`)."""
    assert round(value, decimals) == pytest.approx(expected, abs=1e-12), (value, expected)


def printed_estimate(e: Estimate, expected: tuple[float, float, float, float, float]) -> None:
    estimate, low, high, se, p = expected
    for got, want in zip(
        (e.estimate, e.ci_low, e.ci_high, e.std_error, e.p_value),
        (estimate, low, high, se, p),
        strict=True,
    ):
        printed(got, want)


# --- GrowthBook's numbers --------------------------------------------------------------


def test_welch_lift_matches_gbstats_two_sided_ttest() -> None:
    # Given gbstats' TestTwoSidedTTest arms, when compared, then relative and absolute
    # lift, interval, standard error and p-value are gbstats' to every printed digit
    d = difference(GB_A, GB_B)
    printed_estimate(d.relative, (0.70732, -0.03526, 1.44989, 0.37879, 0.06191))
    printed_estimate(d.absolute, (0.29, 0.04538, 0.53462, 0.12478, 0.02016))


def test_rate_lift_matches_gbstats_proportion_test() -> None:
    # Given 14/28 against 16/30 as proportions (variance p(1-p), as gbstats)
    d = difference(ArmSums.proportion(28, 14), ArmSums.proportion(30, 16))
    printed_estimate(d.relative, (0.06667, -0.47767, 0.61101, 0.2717, 0.80707))


def test_welch_lift_matches_gbstats_full_precision_one_sided_numbers() -> None:
    # gbstats prints its one-sided tests in full. A one-sided 95% bound is the matching
    # end of the two-sided 90% interval, and the one-sided p is half the two-sided one
    # (the estimate being positive): so these are checked to 1e-9.
    d = difference(GB_A3000, GB_B, alpha=0.10)
    rel, ab = d.relative, d.absolute
    assert rel.estimate == pytest.approx(0.5033610858562358, abs=1e-9)
    assert rel.std_error == pytest.approx(0.3334122146400735, abs=1e-9)
    assert rel.ci_low == pytest.approx(-0.045136675850396046, abs=1e-9)
    assert rel.ci_high == pytest.approx(1.0518588475628676, abs=1e-9)
    assert rel.p_value / 2 == pytest.approx(0.06558262868467746, abs=1e-9)
    assert ab.estimate == pytest.approx(0.23437666666666668, abs=1e-9)
    assert ab.std_error == pytest.approx(0.12983081254184736, abs=1e-9)
    assert ab.ci_low == pytest.approx(0.020791480063255735, abs=1e-9)
    assert ab.ci_high == pytest.approx(0.44796185327007765, abs=1e-9)
    assert ab.p_value / 2 == pytest.approx(0.03554272489873023, abs=1e-9)


def test_sequential_matches_gbstats_sequential_ttest() -> None:
    # Given gbstats' TestSequentialTTest arms with tuning parameter 1000
    d = sequential(GB_A3000, GB_B, tuning=1000)
    printed_estimate(d.relative, (0.50336, -0.55844, 1.56516, 0.33341, 1.0))
    assert d.sequential


def test_sequential_rate_matches_gbstats_with_the_default_tuning() -> None:
    d = sequential(ArmSums.proportion(3000, 1396), ArmSums.proportion(3461, 2422))
    printed_estimate(d.relative, (0.50386, 0.40098, 0.60675, 0.03386, 0.0))


def test_sequential_cuped_matches_gbstats_regression_adjusted_test() -> None:
    # Given gbstats' test_sequential_test_runs_ra (pre-period sums, sum of products 1):
    # theta is pooled over both arms, the lift divides by the control's unadjusted mean
    control = CupedSums(GB_A3000, ArmSums(3000, 16.87, 527.9767), 1)
    treatment = CupedSums(GB_B, ArmSums(3461, 22.7, 1348.29), 1)
    d = sequential(control, treatment)
    printed_estimate(d.relative, (0.50338, -0.50969, 1.51646, 0.33341, 1.0))
    assert d.theta == pooled_theta(control, treatment) != 0


def test_the_sequential_interval_is_tightest_near_its_tuning_parameter() -> None:
    # gbstats' test_sequential_test_tuning_as_expected: n = 6461 members in all
    def width(tuning: float) -> float:
        e = sequential(GB_A3000, GB_B, tuning=tuning).relative
        return e.ci_high - e.ci_low

    assert width(6461) < width(10_000) < width(10)
    assert width(6461) > (lambda e: e.ci_high - e.ci_low)(difference(GB_A3000, GB_B).relative)


def test_srm_matches_gbstats_check_srm() -> None:
    # gbstats' test_srm: 1000 and 1200 members on a 50/50 plan, p printed to 9 decimals
    check = srm([1000, 1200], [0.5, 0.5])
    assert check.p_value == pytest.approx(0.000020079, abs=5e-10)
    assert check.mismatch
    assert check.expected == (1100.0, 1100.0)


# --- statsmodels on the raw values -----------------------------------------------------


def _spend(rng: np.random.Generator, n: int, buyers: float = 0.6) -> np.ndarray:
    """Per-member spend: many zeros, a long right tail (as real spend)."""
    return rng.gamma(0.5, 200.0, n) * (rng.random(n) < buyers)


@pytest.mark.parametrize("kind", ["spend", "repurchased"])
def test_welch_difference_matches_statsmodels_on_the_raw_values(kind: str) -> None:
    # Given skewed spend (or 0/1 repurchase) of arms of different sizes
    rng = np.random.default_rng(18)
    if kind == "spend":
        control, treatment = _spend(rng, 2_000), _spend(rng, 2_600) + 5.0
    else:
        control = (rng.random(2_000) < 0.30).astype(float)
        treatment = (rng.random(2_600) < 0.33).astype(float)
    # When compared from their sums, and by statsmodels from the values
    d = difference(arm_sums(control), arm_sums(treatment))
    ref = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
    t, p, dof = ref.ttest_ind(usevar="unequal")
    low, high = ref.tconfint_diff(alpha=0.05, usevar="unequal")
    # Then the absolute lift, interval, p-value and degrees of freedom agree to 1e-6
    assert d.absolute.estimate == pytest.approx(treatment.mean() - control.mean(), abs=1e-6)
    assert d.absolute.ci_low == pytest.approx(low, abs=1e-6)
    assert d.absolute.ci_high == pytest.approx(high, abs=1e-6)
    assert d.absolute.p_value == pytest.approx(p, abs=1e-6)
    assert d.absolute.estimate / d.absolute.std_error == pytest.approx(t, abs=1e-6)
    assert d.dof == pytest.approx(dof, abs=1e-6)
    assert d.absolute.std_error == pytest.approx(ref.std_meandiff_separatevar, abs=1e-6)
    # and scipy's Welch test says the same
    assert d.absolute.p_value == pytest.approx(
        scipy_stats.ttest_ind(treatment, control, equal_var=False).pvalue, abs=1e-6
    )


def _cuped_data(seed: int = 18) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    pre_c, pre_t = _spend(rng, 4_000, 0.7), _spend(rng, 4_200, 0.7)
    post_c = 0.6 * pre_c + rng.gamma(0.5, 200.0, pre_c.size)
    post_t = 0.6 * pre_t + rng.gamma(0.5, 200.0, pre_t.size) + 15.0
    return post_c, pre_c, post_t, pre_t


def test_cuped_lift_is_the_ols_treatment_coefficient() -> None:
    # Given spend that follows pre-period spend, and the OLS regression
    # spend ~ 1 + treatment + (pre - mean(pre)) on the raw rows
    post_c, pre_c, post_t, pre_t = _cuped_data()
    y, x = np.r_[post_c, post_t], np.r_[pre_c, pre_t]
    treated = np.r_[np.zeros(post_c.size), np.ones(post_t.size)]
    ols = sm.OLS(y, sm.add_constant(np.column_stack([treated, x - x.mean()]))).fit(cov_type="HC2")
    control, treatment = cuped_sums(post_c, pre_c), cuped_sums(post_t, pre_t)

    # When CUPED uses the regression's slope as theta, then its absolute lift is the
    # treatment coefficient: the same quantity (Frisch-Waugh-Lovell), to 1e-6
    same = cuped(control, treatment, theta=ols.params[2])
    assert same.absolute.estimate == pytest.approx(ols.params[1], abs=1e-6)

    # Not the same quantity, so compared loosely: (1) the standard error. CUPED's treats
    # theta and the covariate means as known (Deng et al. 2013); the regression's
    # (heteroskedasticity-robust HC2) estimates them; the two agree to first order.
    assert same.absolute.std_error == pytest.approx(ols.bse[1], rel=1e-2)
    # (2) the default theta. It is pooled over both arms (as gbstats), the regression's
    # slope is within arms; they differ by the treatment's share of the covariance, so the
    # lifts differ by a small fraction of a standard error, not by 1e-6.
    pooled = cuped(control, treatment)
    assert pooled.theta == pytest.approx(ols.params[2], rel=1e-2)
    assert abs(pooled.absolute.estimate - ols.params[1]) < 0.01 * ols.bse[1]


def test_cuped_narrows_the_interval_when_pre_period_spend_predicts() -> None:
    post_c, pre_c, post_t, pre_t = _cuped_data()
    plain = difference(arm_sums(post_c), arm_sums(post_t))
    adjusted = cuped(cuped_sums(post_c, pre_c), cuped_sums(post_t, pre_t))
    # the variance left is var(post) (1 - corr(post, pre)^2), to first order
    corr = np.corrcoef(np.r_[post_c, post_t], np.r_[pre_c, pre_t])[0, 1]
    assert adjusted.absolute.std_error < 0.9 * plain.absolute.std_error
    assert adjusted.absolute.std_error == pytest.approx(
        plain.absolute.std_error * np.sqrt(1 - corr**2), rel=0.05
    )
    assert adjusted.absolute.p_value < plain.absolute.p_value
    assert adjusted.relative.estimate == pytest.approx(adjusted.absolute.estimate / post_c.mean())


def test_cuped_with_theta_zero_is_the_plain_difference() -> None:
    post_c, pre_c, post_t, pre_t = _cuped_data()
    plain = difference(arm_sums(post_c), arm_sums(post_t))
    zero = cuped(cuped_sums(post_c, pre_c), cuped_sums(post_t, pre_t), theta=0.0)
    assert zero.absolute == plain.absolute
    assert zero.relative == plain.relative


# --- peeking -----------------------------------------------------------------------------


def test_sequential_interval_keeps_its_coverage_under_peeking() -> None:
    # Given 500 A/A experiments on skewed spend (no true difference), each read 15 times
    # as members arrive (200, 400, ... 3000 per arm)
    rng = np.random.default_rng(2013)
    runs, per_arm, looks = 500, 3_000, range(200, 3_001, 200)
    missed = {"sequential": 0, "fixed": 0, "fixed, read once at the end": 0}
    for _ in range(runs):
        a, b = _spend(rng, per_arm), _spend(rng, per_arm)
        sums = [(np.cumsum(v), np.cumsum(v * v)) for v in (a, b)]
        seen = {"sequential": False, "fixed": False}
        for k in looks:
            arms = [ArmSums(k, float(s[k - 1]), float(q[k - 1])) for s, q in sums]
            for name, e in (
                ("sequential", sequential(*arms).absolute),
                ("fixed", difference(*arms).absolute),
            ):
                seen[name] |= not e.ci_low <= 0 <= e.ci_high
        last = difference(*arms).absolute
        seen["fixed, read once at the end"] = not last.ci_low <= 0 <= last.ci_high
        for name in missed:
            missed[name] += seen[name]
    # Then the always-valid interval excluded the truth at some look in at most 5% of the
    # runs, while the fixed-horizon 95% interval did far more often than 5% (it is right
    # only when read once, at the end)
    assert missed["sequential"] / runs <= 0.05
    assert missed["fixed"] / runs >= 0.12
    assert missed["fixed, read once at the end"] / runs <= 0.07


def test_intervals_keep_their_coverage_at_the_demo_experiment_size() -> None:
    # Given 2,000 draws of the demo's experiment: 140 members per arm, 7% of whom buy in
    # the window untreated (skewed baskets), and a coupon that brings back 10% of the
    # treated who would not have bought
    rng = np.random.default_rng(5)
    runs, per_arm = 2_000, 140
    missed = {"rate": 0, "rate, relative": 0, "revenue": 0, "revenue, relative": 0}
    for _ in range(runs):
        bought_c, bought_t = (rng.random(per_arm) < 0.07 for _ in range(2))
        paid_c, paid_t = (np.where(b, _basket(rng, per_arm), 0.0) for b in (bought_c, bought_t))
        back = ~bought_t & (rng.random(per_arm) < 0.10)
        added = np.where(back, _basket(rng, per_arm), 0.0)
        # the true effect on this draw's treated, as the demo states it: absolute, and
        # relative to both arms' untreated mean
        for name, control, untreated, treated, effect in (
            ("rate", bought_c * 1.0, bought_t * 1.0, (bought_t | back) * 1.0, back * 1.0),
            ("revenue", paid_c, paid_t, paid_t + added, added),
        ):
            base = (control.sum() + untreated.sum()) / (2 * per_arm)
            d = difference(arm_sums(control), arm_sums(treated))
            true = effect.mean()
            missed[name] += not d.absolute.ci_low <= true <= d.absolute.ci_high
            missed[f"{name}, relative"] += bool(base) and not (
                d.relative.ci_low <= true / base <= d.relative.ci_high
            )
    # Then every 95% interval missed the truth in at most 6% of the draws: one that misses
    # in a single run is the draw, not the statistics
    assert all(m / runs <= 0.06 for m in missed.values()), missed


def _basket(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.lognormal(8.3, 0.8, n).round()


# --- sample ratio and assignment -------------------------------------------------------


def test_srm_fires_on_a_skewed_split_and_not_on_a_fair_one() -> None:
    assert not srm([10_000, 10_050], [1, 1]).mismatch
    assert srm([10_000, 10_500], [1, 1]).mismatch
    # planned 20% holdout: 2,000 of 10,000 is fine, 2,300 is not
    assert not srm([2_000, 8_000], [2_000, 8_000]).mismatch
    assert srm([2_300, 7_700], [2_000, 8_000]).mismatch
    # three arms, weights in any unit
    assert not srm([3_310, 3_350, 3_340], [1, 1, 1]).mismatch


def test_hash_assignment_is_uniform() -> None:
    # Given the campaigns' hash assignment (shared by experiments) of 50,000 members
    members = range(1, 50_001)
    buckets = np.array([bucket("EXP-18", m) for m in members])
    # Then the 10,000 buckets, seen as 20 equal bands, fit a uniform split (chi-square)
    bands = np.bincount(buckets * 20 // BUCKETS, minlength=20)
    assert not srm(bands.tolist(), [1] * 20).mismatch
    # and a 20% holdout gets its share: no sample ratio mismatch
    held = sum(in_holdout("EXP-18", m, 2_000) for m in members)
    assert not srm([held, 50_000 - held], [2_000, 8_000]).mismatch


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: difference(GB_A, GB_B, alpha=1.5), "alpha"),
        (lambda: difference(ArmSums(1, 1.0, 1.0), GB_B), "n"),
        (lambda: difference(ArmSums(3, 3.0, 3.0), GB_B), "variance"),
        (lambda: difference(ArmSums.proportion(10, 0), ArmSums.proportion(10, 3)), "variance"),
        (lambda: difference(ArmSums(3, 0.0, 2.0), GB_B), "control"),
        (lambda: sequential(GB_A, GB_B, tuning=0), "tuning"),
        (lambda: srm([10, 10], [1]), "weights"),
        (lambda: srm([10, 10], [1, 0]), "weights"),
        (lambda: srm([10, -1], [1, 1]), "counts"),
        (lambda: cuped_sums([1.0, 2.0], [1.0]), "pre"),
    ],
)
def test_bad_input_names_the_field(call: object, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.field == field


def test_a_strong_effect_gives_a_sequential_p_value_of_zero_not_an_overflow() -> None:
    d = sequential(ArmSums.proportion(500_000, 100_000), ArmSums.proportion(500_000, 150_000))
    assert d.relative.p_value == 0.0
    assert d.relative.ci_low > 0.4
