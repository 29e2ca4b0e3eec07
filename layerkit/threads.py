"""How many threads numpy's BLAS may use inside a block of code.

The time loop of a recurrent layer does one small matrix product per step (N×H by H×G·H). Split
over two OpenBLAS threads, each product waits for the slower thread; when another process holds
one of the cores, that wait is a scheduler time slice, and a whole LSTM forward+backward runs
several times slower than with one thread. Two threads gain little on products this small even
on an idle machine, so the time loops run on one BLAS thread.

Uses threadpoolctl when it is installed (the ``train`` extra); without it the block runs with
numpy's default threads, and the batch blocks below are not used. numba's own threads are not
affected.

The cores are used another way instead: the samples of a batch are independent through the whole
time loop, so :func:`run_batch_blocks` runs the loop for disjoint blocks of rows in parallel
Python threads, each with its own one-thread matrix products and GIL-free numba kernels. The
threads meet once, at the end of the loop, not at every step, so a core taken by another process
delays one block instead of stalling every step. As many blocks as numba has threads
(``NUMBA_NUM_THREADS``, ``numba.set_num_threads``), none smaller than :data:`MIN_ROWS` rows, and
none with less than :data:`MIN_STEP_WORK` multiply-adds per step: below that the per-step Python
overhead of a second thread costs more than it saves. benchmarks/conv_thresholds.py re-measures
both sides of the threshold (last results in benchmarks/README.md).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools

import numba

MIN_ROWS = 8                 # a thinner block's per-step products are too small to share out
MIN_STEP_WORK = 1 << 19      # multiply-adds per step a block needs to repay a thread's overhead


@functools.lru_cache(maxsize=1)
def _controller():
    """One ThreadpoolController (building it scans the loaded libraries: do it once), or None."""
    try:
        from threadpoolctl import ThreadpoolController
        return ThreadpoolController()
    except Exception:                  # not installed, or a library it cannot inspect
        return None


def blas_threads(n: int | None):
    """A context manager running its block with numpy's BLAS on ``n`` threads (no-op when
    ``n`` is None or threadpoolctl is not installed); the previous setting is restored."""
    controller = _controller()
    if n is None or controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=n, user_api="blas")


@functools.lru_cache(maxsize=1)
def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                 thread_name_prefix="layerkit-batch")


def _threads() -> int:
    """How many threads layerkit may keep busy: numba's setting."""
    return numba.get_num_threads()


def batch_blocks(n: int, row_work: int, min_rows: int | None = None) -> list[tuple[int, int]]:
    """Split rows [0, n) into contiguous blocks (lo, hi), one per thread, none smaller than
    ``min_rows`` (default :data:`MIN_ROWS`); ``row_work`` is the multiply-adds of one row in one
    step (G·H·H for the recurrent product). See the module doc."""
    min_rows = MIN_ROWS if min_rows is None else min_rows
    k = max(1, min(_threads(), n // min_rows, n * row_work // MIN_STEP_WORK))
    edges = [n * i // k for i in range(k + 1)]
    return [(edges[i], edges[i + 1]) for i in range(k)]


def run_batch_blocks(fn, n: int, row_work: int, min_rows: int | None = None) -> None:
    """Call ``fn(lo, hi)`` for every block of :func:`batch_blocks`, with numpy's BLAS on one
    thread; the first block runs in the calling thread, the others in a thread pool. Waits for
    all; re-raises the first error."""
    # Without threadpoolctl each block's products would use every BLAS thread: oversubscribed.
    blocks = batch_blocks(n, row_work, min_rows) if _controller() is not None else [(0, n)]
    with blas_threads(1):
        if len(blocks) == 1:
            fn(*blocks[0])
            return
        pool = _pool(max(1, (numba.config.NUMBA_NUM_THREADS or 1) - 1))
        futures = [pool.submit(fn, lo, hi) for lo, hi in blocks[1:]]
        try:
            fn(*blocks[0])
        finally:
            concurrent.futures.wait(futures)
    for f in futures:
        f.result()
