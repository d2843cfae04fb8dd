"""Load and validate the latency model (`bench/latency_model.json`) and draw its figures.

The model is data, not code. Every figure declares its kind:

* ``sourced``: the value comes from the cited sources (a list of {title, url, date, says});
* ``assumption``: no published figure; ``assumption`` says why the value was picked;
* ``mixed``: a source plus an assumption (e.g. a published point with an assumed spread).

A mixed figure counts as an assumption wherever results are reported. The loader refuses a figure
whose kind, sources and assumption text disagree, so an unsourced number cannot pass as sourced.
Target-group health checks are refused here: they come from the deployed config
(bench/deployment_config.py), never from a copy that can go stale.
"""

from __future__ import annotations

import json
import random
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MODEL_PATH = Path(__file__).with_name("latency_model.json")
KINDS = ("sourced", "assumption", "mixed")
#: Keys that belong to the deployed config, not to the latency model.
DEPLOYED_CONFIG_KEYS = frozenset(
    {
        "health_check_interval",
        "healthy_threshold",
        "unhealthy_threshold",
        "deregistration_delay",
        "app_monitor_check_interval",
    }
)
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2}|accessed \d{4}-\d{2}-\d{2}|undated)$")


class LatencyModelError(ValueError):
    """The latency model file is malformed or a figure's provenance is incomplete."""


@dataclass(frozen=True)
class Source:
    """One citation: what it is, where, when (published, 'accessed <date>' or 'undated'), what it says."""

    title: str
    url: str
    date: str
    says: str


@dataclass(frozen=True)
class Figure:
    """One modeled figure: a constant, or a uniform range drawn once per run."""

    path: str
    low: float
    high: float
    unit: str
    kind: str
    sources: tuple[Source, ...] = ()
    assumption: str | None = None

    @property
    def is_assumption(self) -> bool:
        """True unless every part of the value is sourced (a mixed figure is an assumption)."""
        return self.kind != "sourced"

    @property
    def provenance(self) -> str:
        """One line for tables: the kind, the sources (title, date, URL) and the assumption."""
        parts = [f"{s.title} ({s.date}) <{s.url}>: {s.says}" for s in self.sources]
        if self.assumption:
            parts.append(f"assumption: {self.assumption}")
        return f"[{self.kind}] " + "; ".join(parts)

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


def _parse_source(path: str, raw: Any) -> Source:
    if not isinstance(raw, dict):
        raise LatencyModelError(f"figure {path!r}: a source must be an object with title, url, date, says")
    values = {key: raw.get(key) for key in ("title", "url", "date", "says")}
    missing = [key for key, value in values.items() if not isinstance(value, str) or not value.strip()]
    if missing:
        raise LatencyModelError(f"figure {path!r}: a source lacks {', '.join(missing)}")
    if not str(values["url"]).startswith("https://"):
        raise LatencyModelError(f"figure {path!r}: source url {values['url']!r} is not an https URL")
    if not _DATE.match(str(values["date"])):
        raise LatencyModelError(
            f"figure {path!r}: source date {values['date']!r} must be YYYY-MM-DD, "
            "'accessed YYYY-MM-DD' or 'undated'"
        )
    return Source(**{key: str(value).strip() for key, value in values.items()})


def _parse_figure(path: str, node: dict[str, Any]) -> Figure:
    if "source" in node:
        raise LatencyModelError(
            f"figure {path!r}: a free-text 'source' is not accepted; give 'kind', 'sources', 'assumption'"
        )
    kind = node.get("kind")
    if kind not in KINDS:
        raise LatencyModelError(f"figure {path!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    raw_sources = node.get("sources", [])
    if not isinstance(raw_sources, list):
        raise LatencyModelError(f"figure {path!r}: sources must be a list")
    sources = tuple(_parse_source(path, raw) for raw in raw_sources)
    assumption = node.get("assumption")
    if assumption is not None and (not isinstance(assumption, str) or not assumption.strip()):
        raise LatencyModelError(f"figure {path!r}: an assumption must say why")
    if kind in ("sourced", "mixed") and not sources:
        raise LatencyModelError(f"figure {path!r} is {kind} but cites no source")
    if kind in ("assumption", "mixed") and assumption is None:
        raise LatencyModelError(f"figure {path!r} is {kind} but does not say what is assumed")
    if kind == "sourced" and assumption is not None:
        raise LatencyModelError(f"figure {path!r} is 'sourced' but carries an assumption: call it 'mixed'")
    if kind == "assumption" and sources:
        raise LatencyModelError(f"figure {path!r} is an 'assumption' but cites sources: call it 'mixed'")
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
    return Figure(
        path=path,
        low=low,
        high=high,
        unit=str(node["unit"]),
        kind=str(kind),
        sources=sources,
        assumption=assumption.strip() if assumption else None,
    )


def _walk(prefix: str, node: Any, out: dict[str, Figure]) -> None:
    if not isinstance(node, dict):
        raise LatencyModelError(f"{prefix!r} must be an object, got {type(node).__name__}")
    if _is_figure(node):
        out[prefix] = _parse_figure(prefix, node)
        return
    for key, child in node.items():
        if key == "description" and isinstance(child, str):
            continue
        if key in DEPLOYED_CONFIG_KEYS:
            raise LatencyModelError(
                f"{prefix}.{key}: health checks and the deregistration delay come from the synthesized "
                "template, the monitor's check from its shipped configuration (bench/deployment_config.py), "
                "not from the latency model"
            )
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
        """Every figure with its range, kind, sources and assumption, for the results files."""
        return [
            {
                "figure": f.path,
                "low": f.low,
                "high": f.high,
                "unit": f.unit,
                "kind": f.kind,
                "assumption": f.is_assumption,
                "sources": [vars(s) for s in f.sources],
                "assumed": f.assumption,
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
