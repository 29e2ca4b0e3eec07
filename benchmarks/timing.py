"""Shared timing helper for the benchmark scripts (run them as ``python benchmarks/<name>.py``)."""

import statistics
import time


def median_ms(fn, repeat=10, warmup=3):
    """Median wall time of ``fn()`` in milliseconds over ``repeat`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)
