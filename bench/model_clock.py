"""Clocks that run in modeled seconds while the code under test runs for real.

Two kinds, for two kinds of benchmark:

* `VirtualClock` (P1, P2: one switch at a time). Modeled time = real time spent computing (the
  switcher and moto, counted one-to-one, i.e. as if AWS answered as fast as moto) + the modeled
  durations of every sleep taken through the clock. A sleep really sleeps only `scale` of its
  modeled length, so the run is fast, but the result does not depend on the scale or on how
  busy the machine is while sleeping.
* `ScaledClock` (P3: many concurrent switches sharing one token bucket). Modeled time = real
  elapsed time / scale, one timeline for all threads. Real compute is magnified by 1/scale here,
  so P3 uses a larger scale and reports the compute share separately.
"""

from __future__ import annotations

import threading
import time


class VirtualClock:
    """Modeled time for sequential runs: real compute + modeled sleeps (see module docstring)."""

    def __init__(self, scale: float, start_at: float = 0.0) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._lock = threading.Lock()
        self._real_origin = time.perf_counter()
        self._modeled_offset = start_at
        self._real_slept = 0.0
        self._modeled_slept = 0.0

    def now(self) -> float:
        """Modeled seconds since the clock's origin (plus `start_at`)."""
        with self._lock:
            real_busy = time.perf_counter() - self._real_origin - self._real_slept
            return self._modeled_offset + real_busy + self._modeled_slept

    def sleep(self, modeled_seconds: float) -> None:
        """Let `modeled_seconds` pass: sleep the scaled amount, account the modeled amount."""
        if modeled_seconds <= 0:
            return
        began = time.perf_counter()
        time.sleep(modeled_seconds * self.scale)
        real = time.perf_counter() - began
        with self._lock:
            self._real_slept += real
            self._modeled_slept += modeled_seconds

    @property
    def modeled_sleep_total(self) -> float:
        """Modeled seconds spent in sleeps so far (the modeled waits)."""
        with self._lock:
            return self._modeled_slept

    @property
    def real_busy_total(self) -> float:
        """Real seconds spent outside sleeps so far (the compute)."""
        with self._lock:
            return time.perf_counter() - self._real_origin - self._real_slept


class ScaledClock:
    """One shared timeline for concurrent runs: modeled = real elapsed / scale."""

    def __init__(self, scale: float, start_at: float = 0.0) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._real_origin = time.perf_counter()
        self._modeled_offset = start_at
        self._lock = threading.Lock()
        self._modeled_slept = 0.0

    def now(self) -> float:
        return self._modeled_offset + (time.perf_counter() - self._real_origin) / self.scale

    def restart(self, at: float = 0.0) -> None:
        """Make `now()` read `at` from here on (after set-up work that must not count)."""
        self._real_origin = time.perf_counter()
        self._modeled_offset = at

    def sleep(self, modeled_seconds: float) -> None:
        if modeled_seconds <= 0:
            return
        time.sleep(modeled_seconds * self.scale)
        with self._lock:
            self._modeled_slept += modeled_seconds

    @property
    def modeled_sleep_total(self) -> float:
        with self._lock:
            return self._modeled_slept
