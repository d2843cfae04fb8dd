"""Load and validate the latency model (`bench/latency_model.json`) and draw its figures.

The model is data, not code: every figure carries a `source` (a published figure, see
shared/reference/figures.md) or a source starting with "assumption:". The loader refuses a figure
without one, so an unsourced number can never slip into a benchmark result.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MODEL_PATH = Path(__file__).with_name("latency_model.json")
ASSUMPTION_PREFIX = "assumption"


class LatencyModelError(ValueError):
    """The latency model file is malformed or a figure has no source."""


@dataclass(frozen=True)
class Figure:
    """One modeled figure: a constant, or a uniform range drawn once per run."""

    path: str
    low: float
    high: float
    unit: str
    source: str

    @property
    def is_assumption(self) -> bool:
        return self.source.lower().startswith(ASSUMPTION_PREFIX)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def draw(self, rng: random.Random) -> float:
        """A value for one run: the constant, or uniform in [low, high]."""
        if self.low == self.high:
            return self.low
        return rng.uniform(self.low, self.high)


def _is_figure(node: dict[str, Any]) -> bool:
    return "value" in node or "min" in node or "max" in node


def _parse_figure(path: str, node: dict[str, Any]) -> Figure:
    source = node.get("source")
    if not isinstance(source, str) or not source.strip():
        raise LatencyModelError(f"figure {path!r} has no source (cite one or write 'assumption: why')")
    if "unit" not in node:
        raise LatencyModelError(f"figure {path!r} has no unit")
    if "value" in node:
        if "min" in node or "max" in node:
            raise LatencyModelError(f"figure {path!r} has both a value and a range")
        low = high = float(node["value"])
    elif "min" in node and "max" in node:
        low, high = float(node["min"]), float(node["max"])
    else:
        raise LatencyModelError(f"figure {path!r} needs a value, or both min and max")
    if low < 0 or high < low:
        raise LatencyModelError(f"figure {path!r} has an invalid range [{low}, {high}]")
    return Figure(path=path, low=low, high=high, unit=str(node["unit"]), source=source.strip())


def _walk(prefix: str, node: Any, out: dict[str, Figure]) -> None:
    if not isinstance(node, dict):
        raise LatencyModelError(f"{prefix!r} must be an object, got {type(node).__name__}")
    if _is_figure(node):
        out[prefix] = _parse_figure(prefix, node)
        return
    for key, child in node.items():
        if key == "description" and isinstance(child, str):
            continue
        _walk(f"{prefix}.{key}" if prefix else key, child, out)


class LatencyModel:
    """All figures of the model by dotted path (e.g. `instance_transition.pending_to_running`)."""

    def __init__(self, figures: dict[str, Figure], origin: str) -> None:
        self.figures = figures
        self.origin = origin

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "<dict>") -> LatencyModel:
        figures: dict[str, Figure] = {}
        _walk("", data, figures)
        for required in ("time_scale", "api_round_trip.default"):
            if required not in figures:
                raise LatencyModelError(f"the model must define {required!r}")
        return cls(figures, origin)

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL_PATH) -> LatencyModel:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise LatencyModelError(f"{path}: not valid JSON: {error}") from error
        return cls.from_dict(data, origin=str(path))

    def __getitem__(self, path: str) -> Figure:
        try:
            return self.figures[path]
        except KeyError:
            raise LatencyModelError(f"the latency model has no figure {path!r}") from None

    @property
    def time_scale(self) -> float:
        return self["time_scale"].low

    def api_figure(self, service: str, operation: str) -> Figure:
        """The round-trip figure of one operation: per operation, else per service, else the default."""
        for key in (f"api_round_trip.{service}.{operation}", f"api_round_trip.{service}"):
            if key in self.figures:
                return self.figures[key]
        return self.figures["api_round_trip.default"]

    def sources_table(self) -> list[dict[str, Any]]:
        """Every figure with its range and source, for the results files."""
        return [
            {
                "figure": f.path,
                "low": f.low,
                "high": f.high,
                "unit": f.unit,
                "source": f.source,
                "assumption": f.is_assumption,
            }
            for f in self.figures.values()
        ]


class Sampler:
    """Draws figures of one model from one seeded random stream (thread-safe)."""

    def __init__(self, model: LatencyModel, seed: int) -> None:
        self.model = model
        self.seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def draw(self, path: str) -> float:
        """A value of the figure at `path` for this run."""
        with self._lock:
            return self.model[path].draw(self._rng)

    def draw_api(self, service: str, operation: str) -> float:
        """A round trip of one AWS call."""
        with self._lock:
            return self.model.api_figure(service, operation).draw(self._rng)

    def fraction(self) -> float:
        """A uniform number in [0, 1): where in a periodic cycle a fault happens to fall."""
        with self._lock:
            return self._rng.random()


def with_override(model: LatencyModel, path: str, value: float, source: str) -> LatencyModel:
    """A copy of `model` where the figure at `path` is the constant `value` from `source`."""
    old = model[path]
    figures = dict(model.figures)
    figures[path] = Figure(path=path, low=float(value), high=float(value), unit=old.unit, source=source)
    return LatencyModel(figures, model.origin)
