"""Numerical engine of :mod:`metaanalysis.models.bayes`: the marginal posterior of τ
and the normal mixtures for μ, θ_new and θᵢ.

Given τ, μ is conditionally normal (Röver 2020, J Stat Softw 93(6), bayesmeta),
so it is integrated out analytically; the marginal posterior of τ is
one-dimensional and is integrated numerically here (:class:`Posterior`); the
marginal posteriors of μ, θ_new and each θᵢ are mixtures of normals over τ
(:func:`mixture_cdf`, :func:`mixture_pdf`, :func:`mixture_ppf`), and
:func:`shortest_interval` gives highest-density intervals of unimodal ones.

Numerical design (our own, in place of bayesmeta's DIRECT grid): the
posterior of τ is integrated in t = log τ by Gauss-Legendre panels (16
nodes), bisected adaptively until the 16- and 8-node rules agree to 1e-11
relative to the total mass; the range is [1e-8, 1e8] times the typical
within-study SD (widened to cover the prior's 1e-9 quantiles), and both tails
beyond it are added analytically from the local power-law exponent of the
density (which also decides whether the posterior is proper and which moments
are finite).  The same nodes and weights form the normal mixtures for μ, θ_new
and θᵢ, whose quantiles are found by safeguarded Newton iteration to 1e-12.
Posterior quantiles agree with a brute-force 2-D integration to better than
1e-6 in the tests (tests/test_bayes.py).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from metaanalysis.engine.design import Intercept
from metaanalysis.engine.likelihood import loglik
from metaanalysis.errors import InputError
from metaanalysis.models import priors as _priors

_GL16 = np.polynomial.legendre.leggauss(16)
_GL8 = np.polynomial.legendre.leggauss(8)
_LN10 = math.log(10.0)
_RTOL = 1e-11
_MARGIN = 1e-3  # power-law exponents within this of the divergence limit count as divergent


class Posterior:
    """Marginal posterior of τ on adaptive Gauss-Legendre panels in log τ."""

    def __init__(self, y, v, prior: _priors.TauPrior, mu0):
        self.y, self.v, self.prior = y, v, prior
        self.k = y.size
        self.m0, self.w0 = (0.0, 0.0) if mu0 is None else (mu0[0], 1.0 / mu0[1] ** 2)
        s = math.sqrt(float(np.median(v)))
        t_lo, t_hi = math.log(1e-8 * s), math.log(1e8 * s)
        if prior.frozen is not None:
            q_lo, q_hi = float(prior.frozen.ppf(1e-9)), float(prior.frozen.isf(1e-9))
            if q_lo > 0:
                t_lo = min(t_lo, math.log(q_lo) - _LN10)
            if math.isfinite(q_hi) and q_hi > 0:
                t_hi = max(t_hi, math.log(q_hi) + _LN10)
        self.lo_open = prior.lower <= 0
        self.hi_open = not math.isfinite(prior.upper)
        if not self.lo_open:
            t_lo = math.log(prior.lower)
        if not self.hi_open:
            t_hi = math.log(prior.upper)
        if not t_hi > t_lo:
            raise InputError(f"tau_prior: support [{prior.lower:g}, {prior.upper:g}] is empty")
        self.t_lo, self.t_hi = t_lo, t_hi
        self._integrate()

    # conditional moments of mu given tau, and the log marginal likelihood of tau
    def conditional(self, tau):
        """(log marginal likelihood of τ, E[μ | τ], Var[μ | τ]) on an array of τ.

        With a flat prior on μ the marginal likelihood is the restricted
        likelihood of the engine (:func:`metaanalysis.engine.likelihood.loglik`);
        a normal prior N(m0, 1/w0) adds ½ log Σw − ½ log(Σw + w0) −
        ½ Σw w0/(Σw + w0) (μ̂ − m0)², μ̂ the weighted mean.
        """
        tau = np.asarray(tau, dtype=float)
        ll, sw, mu = loglik(Intercept(), self.y[:, None], self.v[:, None], tau * tau, True,
                            parts=True)
        big_w = sw + self.w0
        m = (sw * mu + self.w0 * self.m0) / big_w
        if self.w0:
            d = mu - self.m0
            ll = ll + 0.5 * np.log(sw / big_w) - 0.5 * (sw * self.w0 / big_w) * d * d
        return ll, m, 1.0 / big_w

    def log_f(self, tau):
        """Unnormalised log posterior density of τ (on the τ scale)."""
        tau = np.atleast_1d(np.asarray(tau, dtype=float))
        out = self.prior.logpdf(tau) + self.conditional(tau)[0]
        return np.where(np.isnan(out), -np.inf, out)

    def log_g(self, t):
        """Unnormalised log density of t = log τ (Jacobian included)."""
        t = np.asarray(t, dtype=float)
        return self.log_f(np.exp(t)) + t

    def _panel_sums(self, a, b, rule):
        x, w = rule
        half = 0.5 * (b - a)
        t = 0.5 * (a + b)[:, None] + half[:, None] * x[None, :]
        g = np.exp(np.minimum(self.log_g(t.ravel()) - self.offset, 700.0)).reshape(t.shape)
        return (g * w[None, :]).sum(axis=1) * half, t, g * w[None, :] * half[:, None]

    def _integrate(self):
        edges = np.linspace(self.t_lo, self.t_hi, max(8, int((self.t_hi - self.t_lo) / 0.5)) + 1)
        a, b = edges[:-1], edges[1:]
        probe = self.log_g(np.linspace(self.t_lo, self.t_hi, 801))
        self.offset = float(np.max(probe))
        if not np.isfinite(self.offset):
            raise InputError(
                f"tau_prior: {self.prior.text} gives zero posterior density for every τ in "
                f"[{math.exp(self.t_lo):.3g}, {math.exp(self.t_hi):.3g}]"
            )
        acc_a, acc_b, acc_i, acc_t, acc_w = [], [], [], [], []
        done_total = 0.0
        for _ in range(60):
            i16, t16, w16 = self._panel_sums(a, b, _GL16)
            i8 = self._panel_sums(a, b, _GL8)[0]
            total = done_total + i16.sum()
            ok = (np.abs(i16 - i8) <= _RTOL * total) | ((b - a) < 1e-9)
            for acc, part in ((acc_a, a), (acc_b, b), (acc_i, i16), (acc_t, t16), (acc_w, w16)):
                acc.append(part[ok])
            done_total += i16[ok].sum()
            if ok.all():
                break
            mid = 0.5 * (a[~ok] + b[~ok])
            a, b = np.concatenate([a[~ok], mid]), np.concatenate([mid, b[~ok]])
        a, b, mass = np.concatenate(acc_a), np.concatenate(acc_b), np.concatenate(acc_i)
        order = np.argsort(a)
        self.pa, self.pb = a[order], b[order]
        t_nodes = np.concatenate(acc_t)[order].ravel()
        w_nodes = np.concatenate(acc_w)[order].ravel()
        mass = mass[order]
        # tails beyond the range, from the local power law of g(t) = f(τ)τ
        k_text = f"k = {self.k}"
        if self.hi_open:
            lg = self.log_g(np.array([self.t_hi, self.t_hi + _LN10]))
            self.alpha = math.inf if not np.isfinite(lg[1]) else float(lg[0] - lg[1]) / _LN10
            if not self.alpha > _MARGIN:
                raise InputError(
                    f"tau_prior: {self.prior.text} has too heavy an upper tail for {k_text}: "
                    "the posterior of τ is improper (not integrable as τ → ∞); use a proper "
                    "prior such as scipy.stats.halfnorm(scale=0.5)"
                )
            self.g_hi = math.exp(min(float(lg[0]) - self.offset, 700.0)) if np.isfinite(lg[0]) else 0.0
        else:
            self.alpha, self.g_hi = math.inf, 0.0
        if self.lo_open:
            lg = self.log_g(np.array([self.t_lo - _LN10, self.t_lo]))
            self.beta = math.inf if not np.isfinite(lg[0]) else float(lg[1] - lg[0]) / _LN10
            if not self.beta > _MARGIN:
                raise InputError(
                    f"tau_prior: {self.prior.text} puts too much density near τ = 0: the "
                    "posterior of τ is improper (not integrable at 0)"
                )
            self.g_lo = math.exp(min(float(lg[1]) - self.offset, 700.0)) if np.isfinite(lg[1]) else 0.0
        else:
            self.beta, self.g_lo = math.inf, 0.0
        tail_lo, tail_hi = self._tail(0, "lo"), self._tail(0, "hi")
        z = mass.sum() + tail_lo + tail_hi
        self.z = z
        self.tail_lo, self.tail_hi = tail_lo / z, tail_hi / z
        self.panel_mass = mass / z
        self.cum = self.tail_lo + np.concatenate([[0.0], np.cumsum(self.panel_mass)])
        # mixture nodes (drop negligible weights), tails as pseudo-nodes
        keep = w_nodes / z > 1e-17
        tau = np.exp(t_nodes[keep])
        omega = w_nodes[keep] / z
        extra_tau, extra_w = [], []
        if self.tail_lo > 0:
            extra_tau.append(math.exp(self.t_lo) / 2)
            extra_w.append(self.tail_lo)
        if self.tail_hi > 0:
            extra_tau.append(math.exp(self.t_hi) * 10)
            extra_w.append(self.tail_hi)
        self.n_inner = tau.size
        self.tau_nodes = np.concatenate([tau, extra_tau])
        self.omega = np.concatenate([omega, extra_w])
        _, self.m_nodes, self.var_nodes = self.conditional(self.tau_nodes)

    def _tail(self, r, side):
        """Unnormalised ∫ τ^r g(t) dt over the tail beyond the range (inf if divergent)."""
        if side == "hi":
            if self.g_hi == 0.0:
                return 0.0
            rate = self.alpha - r
            return self.g_hi * math.exp(r * self.t_hi) / rate if rate > _MARGIN else math.inf
        if self.g_lo == 0.0:
            return 0.0
        return self.g_lo * math.exp(r * self.t_lo) / (self.beta + r)

    def tau_moment(self, r):
        hi = self._tail(r, "hi")
        if not math.isfinite(hi):
            return math.inf
        n = self.n_inner
        inner = np.sum(self.omega[:n] * self.tau_nodes[:n] ** r)
        return float(inner + (self._tail(r, "lo") + hi) / self.z)

    def tau_pdf(self, x):
        x = np.asarray(x, dtype=float)
        out = np.zeros_like(x)
        inside = (x >= self.prior.lower) & (x <= self.prior.upper)
        if inside.any():
            out[inside] = np.exp(self.log_f(x[inside]) - self.offset) / self.z
        return out

    def _partial(self, i, t):
        a = self.pa[i]
        if t <= a:
            return 0.0
        return float(self._panel_sums(np.array([a]), np.array([t]), _GL16)[0][0]) / self.z

    def tau_cdf(self, x):
        if x <= 0:
            return 0.0
        t = math.log(x)
        if t <= self.t_lo:
            return self.tail_lo * math.exp(self.beta * (t - self.t_lo)) if self.beta < math.inf else 0.0
        if t >= self.t_hi:
            if self.alpha == math.inf:
                return 1.0
            return 1.0 - self.tail_hi * math.exp(-self.alpha * (t - self.t_hi))
        i = int(np.searchsorted(self.pa, t, side="right")) - 1
        return float(self.cum[i]) + self._partial(i, t)

    def tau_ppf(self, p):
        if p <= self.tail_lo:
            if p <= 0:
                return 0.0
            return math.exp(self.t_lo + math.log(p / self.tail_lo) / self.beta)
        if p >= 1.0 - self.tail_hi:
            if p >= 1:
                return math.inf
            return math.exp(self.t_hi + math.log(self.tail_hi / (1.0 - p)) / self.alpha)
        i = int(np.clip(np.searchsorted(self.cum, p, side="right") - 1, 0, self.pa.size - 1))
        base = float(self.cum[i])
        lo, hi = float(self.pa[i]), float(self.pb[i])
        # safeguarded Newton in t = log τ: d/dt CDF = g(t)/z
        t = lo + (hi - lo) * (p - base) / max(float(self.panel_mass[i]), 1e-300)
        t = min(max(t, lo), hi)
        for _ in range(100):
            r = base + self._partial(i, t) - p
            if r > 0:
                hi = t
            elif r < 0:
                lo = t
            else:
                break
            d = math.exp(min(float(self.log_g(np.array([t]))[0]) - self.offset, 700.0)) / self.z
            tn = t - r / d if d > 0 else math.nan
            if not (lo < tn < hi):
                tn = 0.5 * (lo + hi)
            if abs(tn - t) <= 1e-14 * (1.0 + abs(t)) or hi - lo <= 1e-14 * (1.0 + abs(t)):
                t = tn
                break
            t = tn
        return math.exp(t)


def mixture_cdf(omega, means, sds, x):
    z = (np.asarray(x)[..., None] - means) / sds
    return np.sum(omega * special.ndtr(z), axis=-1)


def mixture_pdf(omega, means, sds, x):
    z = (np.asarray(x)[..., None] - means) / sds
    return np.sum(omega * np.exp(-0.5 * z * z) / (sds * math.sqrt(2 * math.pi)), axis=-1)


def mixture_ppf(omega, means, sds, p):
    """Quantiles of q normal mixtures at once: means, sds (q, N); p (q,)."""
    p = np.asarray(p, dtype=float)
    lo = np.min(means - 60 * sds, axis=1)
    hi = np.max(means + 60 * sds, axis=1)
    mean = means @ omega
    sd = np.sqrt(np.maximum((sds**2 + means**2) @ omega - mean**2, 0.0))
    x = np.clip(mean + special.ndtri(p) * sd, lo, hi)
    done = np.zeros(p.shape, dtype=bool)
    for _ in range(200):
        z = (x[:, None] - means) / sds
        r = np.sum(omega * special.ndtr(z), axis=1) - p
        d = np.sum(omega * np.exp(-0.5 * z * z) / sds, axis=1) / math.sqrt(2 * math.pi)
        done |= np.abs(r) <= 1e-15
        lo = np.where(r < 0, x, lo)
        hi = np.where(r > 0, x, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = x - r / d
        bad = ~np.isfinite(xn) | (xn < lo) | (xn > hi)
        xn = np.where(bad, 0.5 * (lo + hi), xn)
        xn = np.where(done, x, xn)
        done |= np.abs(xn - x) <= 1e-13 * (1.0 + np.abs(x))
        x = xn
        if done.all():
            break
    return x


def shortest_interval(ppf, level, lower=-math.inf):
    """Shortest interval of a unimodal distribution given its quantile function.

    ``lower`` is the lower end of the support (the interval may start there).
    """
    def width(q):
        lo = lower if q <= 0 else ppf(q)[0]
        return ppf(q + level)[0] - lo

    res = optimize.minimize_scalar(width, bounds=(0.0, 1.0 - level), method="bounded",
                                   options={"xatol": 1e-10})
    q = res.x if width(res.x) < width(0.0) else 0.0
    return (lower if q <= 0 else float(ppf(q)[0])), float(ppf(q + level)[0])
