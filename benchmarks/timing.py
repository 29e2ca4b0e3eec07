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
    """(wall seconds, process CPU seconds) per call of ``fn`` over ``number`` back-to-back calls
    (garbage collector paused). The CPU time sums every thread of the process: a pool whose idle
    workers spin shows up there even when other processes make the wall time noisy."""
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - t0) / number, (time.process_time() - c0) / number
    finally:
        if gc_was_on:
            gc.enable()


def paired_median_ms(fa, fb, repeat=10, warmup=3, min_sample_s=0.002):
    """Median wall milliseconds per call of ``fa`` and of ``fb``, timed alternately (see
    :func:`paired_medians`). Returns ``(ms_a, ms_b)``."""
    wall, _ = paired_medians(fa, fb, repeat=repeat, warmup=warmup, min_sample_s=min_sample_s)
    return wall


def paired_medians(fa, fb, repeat=10, warmup=3, min_sample_s=0.002):
    """Median wall and CPU milliseconds per call of ``fa`` and of ``fb``, timed alternately.

    After ``warmup`` calls of each, the two functions take turns: one sample of ``fa``, one of
    ``fb``, ``repeat`` times, so a slow phase of a shared machine hits both alike. A sample is
    ``number`` back-to-back calls with ``number`` chosen from the warm-up so that a sample lasts
    at least ``min_sample_s`` (sub-millisecond operations are otherwise at the mercy of timer
    and scheduler noise). Returns ``((wall_ms_a, wall_ms_b), (cpu_ms_a, cpu_ms_b))``, the CPU
    time being that of the whole process (all its threads) during the sample.
    """
    numbers = []
    for fn in (fa, fb):
        t = []
        for _ in range(max(1, warmup)):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
        numbers.append(max(1, int(min_sample_s / max(min(t), 1e-9))))
    sa, sb = [], []
    for _ in range(repeat):
        sa.append(_sample(fa, numbers[0]))
        sb.append(_sample(fb, numbers[1]))

    def med(samples, i):
        return 1e3 * statistics.median(s[i] for s in samples)
    return (med(sa, 0), med(sb, 0)), (med(sa, 1), med(sb, 1))
