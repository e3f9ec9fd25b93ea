"""The numbers of a reader study: proportions with Wilson intervals and Fleiss' kappa.

"Fake" is the positive class: sensitivity is the share of synthetic images called fake,
specificity the share of real images called real. An "uncertain" answer is neither call, so it
counts against accuracy, sensitivity and specificity alike (the reader did not tell them apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest


@dataclass(frozen=True)
class Proportion:
    successes: int
    trials: int
    low: float | None  # Wilson score interval (None without trials)
    high: float | None

    @property
    def value(self) -> float | None:
        return self.successes / self.trials if self.trials else None

    def as_dict(self) -> dict:
        return {"value": self.value, "successes": self.successes, "trials": self.trials,
                "ci_low": self.low, "ci_high": self.high}


def wilson(successes: int, trials: int, confidence: float = 0.95) -> Proportion:
    """A proportion with its Wilson score interval (good at small n and near 0 or 1, unlike Wald's)."""
    if trials == 0:
        return Proportion(0, 0, None, None)
    interval = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return Proportion(int(successes), int(trials), float(interval.low), float(interval.high))


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa of a subjects x categories table of rating counts (the same raters per subject).

    None when it is undefined: fewer than two subjects or raters, or every rating in one category.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] < 2:
        return None
    raters = counts.sum(axis=1)
    if raters.min() != raters.max() or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number of ratings (at least 2) for every subject.")
    n = raters[0]
    shares = counts.sum(axis=0) / counts.sum()
    agreement = ((counts * (counts - 1)).sum(axis=1) / (n * (n - 1))).mean()
    chance = float((shares**2).sum())
    if chance >= 1.0:
        return None
    return float((agreement - chance) / (1.0 - chance))


def reader_metrics(truths: list[str], answers: list[str]) -> dict[str, Proportion | int]:
    """Accuracy, sensitivity and specificity (with Wilson CIs) of paired truths and answers."""
    fake_on_synthetic = sum(t == "synthetic" and a == "fake" for t, a in zip(truths, answers))
    real_on_real = sum(t == "real" and a == "real" for t, a in zip(truths, answers))
    synthetic = sum(t == "synthetic" for t in truths)
    real = len(truths) - synthetic
    return {
        "reads": len(truths),
        "uncertain": sum(a == "uncertain" for a in answers),
        "accuracy": wilson(fake_on_synthetic + real_on_real, len(truths)),
        "sensitivity": wilson(fake_on_synthetic, synthetic),
        "specificity": wilson(real_on_real, real),
    }
