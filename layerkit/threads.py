"""How many threads numpy's BLAS may use inside a block of code.

The time loop of a recurrent layer does one small matrix product per step (N×H by H×G·H). Split
over two OpenBLAS threads, each product waits for the slower thread; when another process holds
one of the cores, that wait is a scheduler time slice, and a whole LSTM forward+backward ran 3-25×
slower than with one thread (measured 2026-11-23, 2 cores). Two threads gain little on products
this small even on an idle machine, so the time loops run on one BLAS thread.

Uses threadpoolctl when it is installed (it comes with scikit-learn, in the ``train`` extra);
without it the block runs with numpy's default threads. numba's own threads are not affected.
"""

from __future__ import annotations

import contextlib
import functools


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
