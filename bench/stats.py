"""Medians with a bootstrap interval (stdlib only): how far a median of a few runs can be trusted.

A 21-run median of uniform draws still moves by several seconds from one set of seeds to another;
the results report it with a percentile-bootstrap interval instead of as a bare number.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

RESAMPLES = 2000
LEVEL = 0.90
SEED = 90


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap interval."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of an already sorted sequence, q in [0, 1]."""
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def median_interval(
    values: Sequence[float], *, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED
) -> Estimate:
    """The median of `values` and its percentile-bootstrap interval at `level` (seeded: reproducible)."""
    if not values:
        raise ValueError("no values")
    rng = random.Random(seed)
    n = len(values)
    medians = sorted(statistics.median(rng.choices(values, k=n)) for _ in range(resamples))
    tail = (1 - level) / 2
    return Estimate(statistics.median(values), _percentile(medians, tail), _percentile(medians, 1 - tail))


def ratio_interval(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Estimate:
    """median(numerator) / median(denominator) with a paired bootstrap interval: both series come
    from the same seeds (run i of one pairs with run i of the other), so runs are resampled together."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError("paired series of equal, non-zero length expected")
    rng = random.Random(seed)
    n = len(numerator)
    ratios = []
    for _ in range(resamples):
        picks = [rng.randrange(n) for _ in range(n)]
        top = statistics.median(numerator[i] for i in picks)
        bottom = statistics.median(denominator[i] for i in picks)
        ratios.append(top / bottom)
    ratios.sort()
    tail = (1 - level) / 2
    point = statistics.median(numerator) / statistics.median(denominator)
    return Estimate(point, _percentile(ratios, tail), _percentile(ratios, 1 - tail))
