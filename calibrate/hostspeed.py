"""The host's own speed, measured without the engine: a fixed float32 matrix-multiply loop.

A validation error can come from the cost model, from the engine running differently, or from
the machine itself running faster or slower than when it was profiled. The probe separates the
last: it times the same small dense workload (single-threaded NumPy matmuls, the kind of work a
CPU engine's step is made of) and reports the median of a few short samples, in milliseconds.
The profiler records it after every episode (the profile keeps the median and the spread),
validation before and after every scenario, so a report can say "the host ran 20% slower
than when profiled" from a measurement that involves no vLLM at all.

A diagnostic, never a correction: nothing is rescaled by it (``validate run --rescale`` rescales
by the run's own measured step times, and says so).
"""

from __future__ import annotations

import time

import numpy as np

#: the probe's work: ``ROUNDS`` products of (ROWS x SIZE) @ (SIZE x SIZE) float32 per sample
ROWS, SIZE, ROUNDS = 64, 384, 24


def probe_ms(samples: int = 7) -> float:
    """Median wall time of one sample of the fixed workload, in ms (~5-10 ms on a 2-core VM).

    Deterministic inputs (a seeded generator of its own); the result is a timing and varies
    with the machine, which is its purpose."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((ROWS, SIZE), dtype=np.float32)
    b = rng.standard_normal((SIZE, SIZE), dtype=np.float32) / np.float32(SIZE)
    np.matmul(a, b)  # first call: allocation, dispatch
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        x = a
        for _ in range(ROUNDS):
            x = np.matmul(x, b)
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1e3, 4)


def slowdown(now_ms: float | None, then_ms: float | None) -> float | None:
    """``now / then`` (1.2: the host runs 20% slower than then); None when either is missing."""
    if not now_ms or not then_ms:
        return None
    return round(now_ms / then_ms, 4)
