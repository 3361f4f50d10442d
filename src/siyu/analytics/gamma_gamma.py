"""Gamma-Gamma spend model (Fader & Hardie, "The Gamma-Gamma Model of Monetary Value",
2013): what a member's future purchases will be worth on average.

A member's purchase values are Gamma(p, nu) around their own mean, with nu ~ Gamma(q,
gamma) across members; only the average repeat value zbar over x repeat purchases is
needed. Members without a repeat purchase carry no information about spread and are left
out of the fit. On CDNOW's 946 repeat buyers (dollars) it reproduces p=6.25, q=3.74,
gamma=15.44 (asserted in tests/analytics). Spend in fen only rescales gamma.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import gammaln

from siyu.errors import ValidationError

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma parameters, the log-likelihood and how many members fitted."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    members: int

    def to_json(self) -> dict[str, Any]:
        return {
            "p": round(self.p, 6),
            "q": round(self.q, 6),
            "gamma": round(self.gamma, 6),
            "log_likelihood": round(self.log_likelihood, 4),
            "members": self.members,
        }

    def expected_spend(self, x: ArrayLike, zbar: ArrayLike) -> F64:
        """E[value of a future purchase | x, zbar] per member: a weighted mean of the
        population mean and the member's own average, weighted by x (eq. 5)."""
        x_ = np.asarray(x, dtype=np.float64)
        z = np.asarray(zbar, dtype=np.float64)
        population = self.p * self.gamma / (self.q - 1) if self.q > 1 else np.nan
        own = self.p * (self.gamma + x_ * z) / (self.p * x_ + self.q - 1)
        return np.asarray(np.where(x_ > 0, own, population), dtype=np.float64)


def log_likelihood(params: tuple[float, float, float], x: F64, zbar: F64) -> F64:
    """Each repeat buyer's log-density of zbar given x under (p, q, gamma)."""
    p, q, g = params
    px = p * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + (px - 1) * np.log(zbar)
        + px * np.log(x)
        - (px + q) * np.log(g + x * zbar),
        dtype=np.float64,
    )


def fit_gamma_gamma(x: ArrayLike, zbar: ArrayLike) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma over members with x > 0 repeat purchases of average
    value zbar > 0."""
    x_ = np.asarray(x, dtype=np.float64)
    z = np.asarray(zbar, dtype=np.float64)
    if x_.shape != z.shape:
        raise ValidationError("monetary", "needs one average value per member")
    keep = x_ > 0
    x_, z = x_[keep], z[keep]
    if x_.size < 2:
        raise ValidationError("monetary", "needs at least two members with repeat purchases")
    if not np.isfinite(z).all() or (z <= 0).any():
        raise ValidationError(
            "monetary", "the average repeat purchase value must be > 0 for every repeat buyer"
        )
    # scale spend to about 1 for the search; gamma scales back, p and q do not change
    scale = float(np.mean(z))
    zs = z / scale

    def loss(theta: F64) -> float:
        p, q, g = np.exp(theta)
        return -float(np.sum(log_likelihood((p, q, g), x_, zs)))

    best = minimize(loss, np.zeros(3), method="Nelder-Mead", options=_NM)
    best = minimize(loss, best.x, method="L-BFGS-B")
    p, q, g = (float(v) for v in np.exp(best.x))
    # the log-likelihood of the unscaled data: the density of z picks up -log(scale) each
    ll = -float(best.fun) - x_.size * np.log(scale)
    return GammaGamma(p, q, g * scale, float(ll), int(x_.size))


_NM = {"xatol": 1e-8, "fatol": 1e-8, "maxiter": 20_000, "maxfev": 20_000}
