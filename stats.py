"""The report's one rule for "beyond noise": pooled spread, Student-t, Holm within a study.

A study's settings were each run with a few seeds (often n = 3). Estimating a spread from three
values is unstable, and two standard errors with 2-4 degrees of freedom call 12-18% of equal pairs
different. So, per study and per measured quantity:

- the spread is pooled over every setting of the study with two or more seeds (one s per study,
  s² = Σ (n_i − 1) s_i² / Σ (n_i − 1), df = Σ (n_i − 1));
- two settings differ beyond noise only if the two-sided pooled t-test of their means survives
  Holm's step-down correction (family-wise error 5%) over every pair of the study's groups;
- a setting with one seed is indicative: it is shown, but never called above or below anything.

    >>> f = Family({"a": [1.0, 2.0, 3.0], "b": [5.0, 6.0, 7.0]})
    >>> round(f.s, 3), f.df, f.verdict("b", "a")
    (1.0, 4, 'above')

Needs numpy and scipy only.
"""
import itertools
import math

import numpy as np
from scipy import stats as sps

ALPHA = 0.05  # family-wise error of one study's calls, and 1 − the confidence of an interval

# verdict -> the words a sentence uses for it; every sentence of the report takes them from here
WORDS = {"above": "beyond noise", "below": "beyond noise", "within": "within noise",
         "indicative": "indicative only (n=1), not called", "no spread": "no seed spread, not called"}
CALLED = ("above", "below")
DECIDED = CALLED + ("within",)  # the verdicts the rule reached: not indicative, not without a spread


def mean_sd_n(values):
    """(mean, sample std (nan for one value), n) of the non-None values."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), len(v)


def pooled_sd(groups):
    """(s, df): the spread pooled over the groups with two or more values; (nan, 0) if none has."""
    ss, df = 0.0, 0
    for values in groups:
        m, sd, n = mean_sd_n(values)
        if n >= 2:
            ss += (n - 1) * sd ** 2
            df += n - 1
    return (math.sqrt(ss / df), df) if df else (float("nan"), 0)


def t_quantile(df, alpha=ALPHA):
    """The two-sided Student-t critical value t_{1 − alpha/2, df}."""
    return float(sps.t.ppf(1 - alpha / 2, df))


def holm(pvalues, alpha=ALPHA):
    """Holm's (1979) step-down: which of the hypotheses are rejected at family-wise error alpha."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    reject = [False] * len(pvalues)
    for rank, i in enumerate(order):
        if pvalues[i] > alpha / (len(pvalues) - rank):
            break
        reject[i] = True
    return reject


class Family:
    """Every pairwise comparison among a study's groups (settings, and the floor where a study
    compares with it) for one measured quantity, decided together.

    groups: {name: [value per seed]}; pairs: the comparisons the study makes (default: every pair).
    """

    def __init__(self, groups, pairs=None, alpha=ALPHA):
        self.groups = {k: [v for v in vals if v is not None] for k, vals in groups.items()}
        self.alpha = alpha
        self.s, self.df = pooled_sd(self.groups.values())
        names = [k for k, v in self.groups.items() if v]
        self.pairs = list(pairs) if pairs is not None else list(itertools.combinations(names, 2))
        tested = [(a, b) for a, b in self.pairs if self.n(a) >= 2 and self.n(b) >= 2 and self.df]
        self.p = {}
        for a, b in tested:
            gap, se = self.mean(a) - self.mean(b), self.se(a, b)
            if se == 0:  # seeds that all agree (a pooled spread of 0): any gap is beyond noise
                self.p[a, b] = 1.0 if gap == 0 else 0.0
                continue
            t = gap / se
            self.p[a, b] = float(2 * sps.t.sf(abs(t), self.df)) if math.isfinite(t) else 1.0
        self.rejected = dict(zip(tested, holm([self.p[k] for k in tested], alpha)))

    def n(self, name):
        return len(self.groups.get(name, []))

    def mean(self, name):
        return float(np.mean(self.groups[name])) if self.n(name) else float("nan")

    def se(self, a, b):
        """The standard error of mean_a − mean_b under the pooled spread."""
        return self.s * math.sqrt(1 / self.n(a) + 1 / self.n(b))

    def margin(self, a, b):
        """The least difference one t-test alone would call (before Holm's correction)."""
        return t_quantile(self.df, self.alpha) * self.se(a, b)

    def ci(self, name):
        """(low, high): the 95% confidence interval of a group's mean under the pooled spread; None
        for one seed or no pooled spread."""
        if self.n(name) < 2 or not self.df:
            return None
        half = t_quantile(self.df, self.alpha) * self.s / math.sqrt(self.n(name))
        return self.mean(name) - half, self.mean(name) + half

    def verdict(self, a, b):
        """'above' / 'below' (a against b, beyond noise), 'within', 'indicative' (a side with one
        seed) or 'no spread' (nothing in the study has two seeds)."""
        if (a, b) not in self.p and (b, a) not in self.p:
            if (a, b) not in self.pairs and (b, a) not in self.pairs:
                raise KeyError(f"{a} vs {b} is not a comparison of this family")
            return "indicative" if self.df and min(self.n(a), self.n(b)) == 1 else \
                "no spread" if not self.df else "indicative"
        key = (a, b) if (a, b) in self.p else (b, a)
        if not self.rejected[key]:
            return "within"
        return "above" if self.mean(a) > self.mean(b) else "below"

    def rule_text(self):
        """'s = 0.59 (df = 10)' for the study's spread; '' without one."""
        return f"s = {self.s:.2f} (df = {self.df})" if self.df else ""


def fmt_ci(family, name, digits=2):
    """'54.24 [53.50, 54.98] (n=3)', '54.77 (n=1, indicative)', or '—' for no values."""
    n = family.n(name)
    if n == 0:
        return "—"
    m = family.mean(name)
    ci = family.ci(name)
    if n == 1:
        return f"{m:.{digits}f} (n=1, indicative)"
    if ci is None:
        return f"{m:.{digits}f} (n={n})"
    return f"{m:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}] (n={n})"
