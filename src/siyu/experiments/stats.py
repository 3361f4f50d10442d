"""The statistics of an experiment on member groups: lift with its interval, CUPED, the
sample-ratio check and the always-valid (sequential) interval.

Every function takes per-arm sums (members, sum, sum of squares; for CUPED also the
pre-period covariate's sums and the sum of products), never rows: one grouped SQL or Ibis
query gives them for millions of members. `arm_sums` / `cuped_sums` build them from numpy
arrays for tests and small samples.

The formulas follow GrowthBook's open-source engine (gbstats), so the numbers can be read
against a tool data scientists already trust; the distributions come from scipy:

- Lift: Welch's t (unequal variances, Welch-Satterthwaite degrees of freedom); the relative
  lift (treatment - control) / control has its variance by the delta method, as in gbstats'
  `frequentist_variance` (Casella & Berger, *Statistical Inference*, 2nd ed., §5.5.4).
- CUPED: Deng, Xu, Kohavi & Walker, "Improving the Sensitivity of Online Controlled
  Experiments by Utilizing Pre-Experiment Data", WSDM 2013. theta = cov(post, pre) / var(pre)
  over both arms pooled (gbstats `compute_theta`); the relative lift is divided by the
  control's unadjusted mean and its variance is gbstats' `frequentist_variance_relative_cuped`
  (GrowthBook's correction, growthbook/growthbook pull request #3610, made after gbstats
  0.8.0, the release on PyPI, which gives a relative CUPED lift the plain ratio's variance).
- Sample ratio mismatch: chi-square goodness of fit (`scipy.stats.chisquare`) of the arm
  counts against the planned weights, flagged below p = 0.001 (GrowthBook's default).
- Sequential: asymptotic confidence sequences, Waudby-Smith, Arnold, Wu, Wang, Ramdas &
  Howard, "Time-uniform central limit theory and asymptotic confidence sequences",
  arXiv:2103.06476v7 (eq. 9 the half-width, eq. 155 the p-value, eq. 161 rho from the
  tuning parameter, GrowthBook's default 5,000); builds on Howard, Ramdas, McAuliffe &
  Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Statist.
  2021.

docs/architecture.md ("Experiments: the statistics") says why these and how they are
checked (tests/experiments/test_stats_against_gbstats.py against gbstats itself at full
precision; tests/experiments/test_experiment_stats.py against gbstats' own test numbers,
statsmodels and a peeking simulation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from siyu.errors import ValidationError

SRM_THRESHOLD = 0.001
SEQUENTIAL_TUNING = 5_000.0


@dataclass(frozen=True)
class ArmSums:
    """One arm's metric as sums. `binary` marks a yes/no metric whose variance is taken as
    p(1 - p), as gbstats' ProportionStatistic does (0/1 sums without it give the sample
    variance, as a t-test on the raw 0/1 values does)."""

    n: int
    sum: float
    sum_squares: float
    binary: bool = False

    @classmethod
    def proportion(cls, n: int, successes: int) -> ArmSums:
        return cls(n, successes, successes, binary=True)

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def variance(self) -> float:
        if self.binary:
            return self.mean * (1 - self.mean)
        return (self.sum_squares - self.sum**2 / self.n) / (self.n - 1)


@dataclass(frozen=True)
class CupedSums:
    """One arm's metric (`post`) and its pre-period covariate (`pre`, same members)."""

    post: ArmSums
    pre: ArmSums
    sum_products: float

    @property
    def n(self) -> int:
        return self.post.n

    @property
    def covariance(self) -> float:
        return (self.sum_products - self.post.sum * self.pre.sum / self.n) / (self.n - 1)


def arm_sums(values: ArrayLike) -> ArmSums:
    """The sums of one arm's per-member values (0/1 for a yes/no metric)."""
    x = np.asarray(values, dtype=float)
    return ArmSums(int(x.size), float(x.sum()), float(x @ x))


def cuped_sums(post: ArrayLike, pre: ArrayLike) -> CupedSums:
    """The sums of one arm's metric and pre-period covariate, member by member."""
    y, x = np.asarray(post, dtype=float), np.asarray(pre, dtype=float)
    if y.shape != x.shape:
        raise ValidationError("pre", f"one value per member of post: {x.shape} != {y.shape}")
    return CupedSums(arm_sums(y), arm_sums(x), float(y @ x))


@dataclass(frozen=True)
class Estimate:
    """A lift with its standard error, interval and two-sided p-value."""

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class Difference:
    """Treatment against control: absolute (metric units) and relative (share of the
    control's unadjusted mean). With CUPED the arms' means are the adjusted ones."""

    control_mean: float
    treatment_mean: float
    absolute: Estimate
    relative: Estimate
    dof: float
    theta: float = 0.0
    sequential: bool = False


@dataclass(frozen=True)
class SrmCheck:
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    p_value: float
    mismatch: bool


Arm = ArmSums | CupedSums


def difference(control: ArmSums, treatment: ArmSums, alpha: float = 0.05) -> Difference:
    """Fixed-horizon lift of a mean (or a rate, with 0/1 values): Welch's t interval."""
    return _compare(control, treatment, alpha, theta=0.0, tuning=None)


def cuped(
    control: CupedSums, treatment: CupedSums, alpha: float = 0.05, theta: float | None = None
) -> Difference:
    """Fixed-horizon lift after CUPED on the pre-period covariate. `theta` defaults to the
    pooled regression slope of post on pre (both arms together, as gbstats)."""
    t = pooled_theta(control, treatment) if theta is None else float(theta)
    return _compare(control, treatment, alpha, theta=t, tuning=None)


def sequential(
    control: Arm, treatment: Arm, alpha: float = 0.05, tuning: float = SEQUENTIAL_TUNING
) -> Difference:
    """The lift with an always-valid interval and p-value: they stay valid however often the
    result is read. `tuning` is the total sample size at which the interval is tightest.
    CUPED sums are adjusted first (pooled theta)."""
    if tuning <= 0:
        raise ValidationError("tuning", "must be positive", tuning)
    theta = 0.0
    if isinstance(control, CupedSums) and isinstance(treatment, CupedSums):
        theta = pooled_theta(control, treatment)
    return _compare(control, treatment, alpha, theta=theta, tuning=tuning)


def pooled_theta(control: CupedSums, treatment: CupedSums) -> float:
    """cov(post, pre) / var(pre) over both arms' members together; 0 if either has no
    variance (then CUPED is the plain comparison)."""
    joined = CupedSums(
        _join(control.post, treatment.post),
        _join(control.pre, treatment.pre),
        control.sum_products + treatment.sum_products,
    )
    if joined.pre.variance == 0 or joined.post.variance == 0:
        return 0.0
    return joined.covariance / joined.pre.variance


def srm(
    counts: Sequence[int], weights: Sequence[float], threshold: float = SRM_THRESHOLD
) -> SrmCheck:
    """Sample ratio mismatch: do the arms' member counts fit the planned weights?"""
    if len(counts) != len(weights) or len(counts) < 2:
        raise ValidationError("weights", "one per arm counted, and at least two arms")
    if any(w <= 0 for w in weights):
        raise ValidationError("weights", "must be positive", list(weights))
    if any(c < 0 for c in counts):
        raise ValidationError("counts", "must not be negative", list(counts))
    share = np.asarray(weights, dtype=float) / float(sum(weights))
    expected = share * sum(counts)
    chi2, p = stats.chisquare(np.asarray(counts, dtype=float), f_exp=expected)
    return SrmCheck(
        tuple(int(c) for c in counts),
        tuple(float(e) for e in expected),
        float(chi2),
        float(p),
        bool(p < threshold),
    )


def _join(a: ArmSums, b: ArmSums) -> ArmSums:
    return ArmSums(a.n + b.n, a.sum + b.sum, a.sum_squares + b.sum_squares, a.binary)


def _parts(arm: Arm, theta: float) -> tuple[ArmSums, float, float, float]:
    """(post sums, adjusted mean, adjusted variance, cov(post, pre)) of one arm."""
    if isinstance(arm, ArmSums):
        return arm, arm.mean, arm.variance, 0.0
    cov = arm.covariance
    mean = arm.post.mean - theta * arm.pre.mean
    variance = arm.post.variance + theta**2 * arm.pre.variance - 2 * theta * cov
    return arm.post, mean, variance, cov


def _compare(
    control: Arm, treatment: Arm, alpha: float, theta: float, tuning: float | None
) -> Difference:
    if not 0 < alpha < 1:
        raise ValidationError("alpha", "must be between 0 and 1", alpha)
    if min(control.n, treatment.n) < 2:
        raise ValidationError("n", "each arm needs at least 2 members")
    post_a, mean_a, var_a, cov_a = _parts(control, theta)
    post_b, mean_b, var_b, _ = _parts(treatment, theta)
    n_a, n_b = control.n, treatment.n
    if var_a <= 0 or var_b <= 0:
        raise ValidationError("variance", "each arm's metric must vary (variance > 0)")
    if post_a.mean == 0:
        raise ValidationError("control", "mean must not be 0 (the relative lift divides by it)")
    welch_dof = (var_a / n_a + var_b / n_b) ** 2 / (
        (var_a / n_a) ** 2 / (n_a - 1) + (var_b / n_b) ** 2 / (n_b - 1)
    )
    absolute = mean_b - mean_a
    abs_var = var_a / n_a + var_b / n_b
    # Delta method for (b - a) / m_a, m_a the control's unadjusted mean; the control's
    # gradient is evaluated at the treatment's unadjusted mean m_b (gbstats' choice).
    m_a, m_b = post_a.mean, post_b.mean
    pre_var_a = control.pre.variance if isinstance(control, CupedSums) else 0.0
    relative = absolute / m_a
    rel_var = var_b / (n_b * m_a**2) + (
        post_a.variance * m_b**2 / m_a**2 - 2 * theta * cov_a * m_b / m_a + theta**2 * pre_var_a
    ) / (n_a * m_a**2)
    pairs = ((absolute, abs_var), (relative, rel_var))
    if tuning is None:
        ab, rel = (_welch(x, v, welch_dof, alpha) for x, v in pairs)
    else:
        ab, rel = (_always_valid(x, v, n_a + n_b, alpha, tuning) for x, v in pairs)
    return Difference(mean_a, mean_b, ab, rel, welch_dof, theta, tuning is not None)


def _welch(x: float, variance: float, dof: float, alpha: float) -> Estimate:
    se = math.sqrt(variance)
    half = float(stats.t.ppf(1 - alpha / 2, dof)) * se
    p = 2 * float(stats.t.sf(abs(x) / se, dof))
    return Estimate(x, se, x - half, x + half, p)


def _always_valid(x: float, variance: float, n: int, alpha: float, tuning: float) -> Estimate:
    log_a = math.log(alpha)
    rho2 = (-2 * log_a + math.log(-2 * log_a + 1)) / tuning  # eq. 161
    s2 = variance * n  # per-observation variance of the estimator
    tr2p1 = n * rho2 + 1
    half = math.sqrt(s2 * 2 * tr2p1 * math.log(math.sqrt(tr2p1) / alpha) / (n**2 * rho2))  # eq. 9
    s_n2 = n**2 * x**2 / s2  # the squared standardised sum
    # eq. 155: p = 1 / e-value, in logs (a strong effect's e-value overflows a float)
    log_e = rho2 * s_n2 / (2 * tr2p1) - 0.5 * math.log(tr2p1)
    return Estimate(x, math.sqrt(variance), x - half, x + half, min(1.0, math.exp(-log_e)))
