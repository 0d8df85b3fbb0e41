"""Wall-clock samples of one operation, summarised by their median."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Samples:
    """Timings in milliseconds; ``warmup`` holds the discarded first runs."""

    warmup: list[float] = field(default_factory=list)
    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")

    @property
    def spread(self) -> tuple[float, float]:
        return (min(self.runs), max(self.runs)) if self.runs else (float("nan"), float("nan"))

    def as_dict(self) -> dict[str, Any]:
        low, high = self.spread
        return {
            "median_ms": round(self.median, 3),
            "min_ms": round(low, 3),
            "max_ms": round(high, 3),
            "runs_ms": [round(r, 3) for r in self.runs],
            "warmup_ms": [round(w, 3) for w in self.warmup],
        }


def time_once(action: Callable[[], object]) -> float:
    """Milliseconds one call of ``action`` takes.

    Earlier garbage is collected first so it is not charged to this call; the
    collector stays enabled during the call (its cost is part of the operation).
    """
    gc.collect()
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def record(samples: Samples, action: Callable[[], object], *, warmup: bool) -> None:
    elapsed = time_once(action)
    (samples.warmup if warmup else samples.runs).append(elapsed)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")
