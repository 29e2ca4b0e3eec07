"""Shared timing helpers for the benchmark scripts (run them as ``python benchmarks/<name>.py``)."""

import gc
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


def _sample(fn, number):
    """Seconds per call of ``fn`` over ``number`` back-to-back calls (garbage collector paused)."""
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - t0) / number
    finally:
        if gc_was_on:
            gc.enable()


def paired_median_ms(fa, fb, repeat=10, warmup=3, min_sample_s=0.002):
    """Median milliseconds per call of ``fa`` and of ``fb``, timed alternately.

    After ``warmup`` calls of each, the two functions take turns: one sample of ``fa``, one of
    ``fb``, ``repeat`` times, so a slow phase of a shared machine hits both alike. A sample is
    ``number`` back-to-back calls with ``number`` chosen from the warm-up so that a sample lasts
    at least ``min_sample_s`` (sub-millisecond operations are otherwise at the mercy of timer
    and scheduler noise). Returns ``(ms_a, ms_b)``.
    """
    numbers = []
    for fn in (fa, fb):
        t = []
        for _ in range(max(1, warmup)):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
        numbers.append(max(1, int(min_sample_s / max(min(t), 1e-9))))
    ta, tb = [], []
    for _ in range(repeat):
        ta.append(_sample(fa, numbers[0]))
        tb.append(_sample(fb, numbers[1]))
    return 1e3 * statistics.median(ta), 1e3 * statistics.median(tb)
