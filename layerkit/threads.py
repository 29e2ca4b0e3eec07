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

Idle workers must sleep, whatever was imported first (:func:`settle_pools`). OpenBLAS's workers
spin ~0.1 s after each product and an OpenMP runtime's workers spin after each parallel region
unless told otherwise, and a spinning worker holds the core that the other pool needs next.
``import layerkit`` sets ``OPENBLAS_THREAD_TIMEOUT`` and ``OMP_WAIT_POLICY`` for libraries that
load later; for those already loaded the two environment variables come too late, and
:func:`settle_pools` acts on the running libraries instead:

- an OpenBLAS loaded with numpy before layerkit re-reads its environment and stops its workers
  (``openblas_read_env``, ``blas_thread_shutdown_``: the pair it runs around ``fork``); the next
  parallel product starts them again with the short timeout;
- an OpenMP runtime already loaded (torch's ``libgomp``, imported before layerkit) enters the
  process's global symbol scope, and numba's OpenMP threading layer, loaded later, would bind
  to it and inherit its spinning workers. numba's layer is then loaded with ``RTLD_DEEPBIND``,
  which binds it to its own ``libgomp``, initialised now with the passive wait policy.

Both happen only when no other non-daemon Python thread runs (at the top of a script or a
notebook).
PyTorch's own workers still spin after PyTorch's operations unless ``OMP_WAIT_POLICY=PASSIVE``
was in the environment when torch loaded; that shows only where the two libraries alternate
closely (cross-checks, benchmarks).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import functools
import os
import sys
import threading

import numba

MIN_ROWS = 8                 # a thinner block's per-step products are too small to share out
MIN_STEP_WORK = 1 << 19      # multiply-adds per step a block needs to repay a thread's overhead
#: OpenBLAS runs a GEMM of at most this many multiply-adds (M·N·K) on one thread whatever its
#: thread setting (interface/gemm.c: SMP_THRESHOLD_MIN · GEMM_MULTITHREAD_THRESHOLD, 65536 · 4):
#: below it run_batch_blocks calls ``fn`` directly, without setting the thread count.
BLAS_SERIAL_WORK = 1 << 18


#: What the first :func:`settle_pools` (run by ``import layerkit``) did.
SETTLED: dict = {}


def loaded_libraries(*fragments: str) -> list[str]:
    """Paths of the shared libraries mapped into this process whose file name contains one of
    ``fragments`` (Linux: /proc/self/maps; elsewhere an empty list)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(None, 5)[5].strip() for line in maps if line.count(" ") >= 5
                     and "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths
                  if any(f in os.path.basename(p) for f in fragments) and ".so" in p)


def _restart_openblas(path: str) -> bool:
    """Make a loaded OpenBLAS re-read OPENBLAS_THREAD_TIMEOUT and restart its workers with it,
    if it was loaded without one. Returns whether it did."""
    try:
        lib = ctypes.CDLL(path)
        timeout, read_env, shutdown = (lib.openblas_thread_timeout, lib.openblas_read_env,
                                       lib.blas_thread_shutdown_)
    except (OSError, AttributeError):       # another BLAS, or an OpenBLAS without these entries
        return False
    if timeout() > 0:                       # set in the environment it was loaded with: kept
        return False
    read_env()
    if timeout() <= 0:
        return False
    shutdown()                              # workers join; the next parallel call restarts them
    return True


def _bind_numba_to_own_openmp() -> bool:
    """Start numba's threading layer with RTLD_DEEPBIND when another OpenMP runtime is already
    loaded, so that it binds to its own libgomp. Returns whether the layer was started so."""
    deepbind = getattr(os, "RTLD_DEEPBIND", None)
    if deepbind is None or not loaded_libraries("libgomp", "libomp", "libiomp"):
        return False
    import numba.np.ufunc.parallel as numba_parallel
    if getattr(numba_parallel, "_is_initialized", False):
        return False                        # already started: nothing left to choose
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | deepbind)
    try:
        numba.get_num_threads()             # loads and starts the threading layer
    finally:
        sys.setdlopenflags(flags)
    return True


def settle_pools() -> dict:
    """Apply the environment's OPENBLAS_THREAD_TIMEOUT and OMP_WAIT_POLICY=PASSIVE (set by
    ``import layerkit`` unless already set) to the pools of libraries loaded before layerkit
    (see the module doc). Returns what was done:
    ``{"openblas_restarted": [paths], "numba_deepbind": bool}``, also kept in :data:`SETTLED`
    (the first call's, at import)."""
    done = {"openblas_restarted": [], "numba_deepbind": False}
    # Another thread may be inside a BLAS call (a restart would strand it) or importing an
    # extension module (it would get RTLD_DEEPBIND too): then the pools are left as they are.
    # Daemon threads (a notebook kernel's heartbeat and I/O threads) do neither.
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    if all(t.daemon for t in others):
        done["openblas_restarted"] = [p for p in loaded_libraries("openblas")
                                      if _restart_openblas(p)]
        if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
            done["numba_deepbind"] = _bind_numba_to_own_openmp()
    if not SETTLED:
        SETTLED.update(done)
    return done


@functools.lru_cache(maxsize=1)
def _controller():
    """One ThreadpoolController (building it scans the loaded libraries: do it once), or None."""
    try:
        from threadpoolctl import ThreadpoolController
        return ThreadpoolController()
    except Exception:                  # not installed, or a library it cannot inspect
        return None


@functools.lru_cache(maxsize=1)
def _blas_libraries() -> tuple:
    """The BLAS libraries threadpoolctl found (found once), empty without threadpoolctl."""
    controller = _controller()
    if controller is None:
        return ()
    return tuple(lib for lib in controller.lib_controllers if lib.user_api == "blas")


class _BlasThreads:
    """Context manager behind :func:`blas_threads`: sets each BLAS library's thread count to
    ``n`` where it differs and puts back the previous counts on exit. One call costs a few
    microseconds (threadpoolctl's own ``limit`` re-reads every library's info each time)."""

    __slots__ = ("n", "restore")

    def __init__(self, n: int):
        self.n, self.restore = n, []

    def __enter__(self):
        for lib in _blas_libraries():
            before = lib.get_num_threads()
            if before != self.n:
                lib.set_num_threads(self.n)
                self.restore.append((lib, before))
        return self

    def __exit__(self, *exc):
        for lib, before in reversed(self.restore):
            lib.set_num_threads(before)
        self.restore = []
        return False


def blas_threads(n: int | None):
    """A context manager running its block with numpy's BLAS on ``n`` threads (no-op when
    ``n`` is None or threadpoolctl is not installed); the previous setting is restored."""
    if n is None or not _blas_libraries():
        return contextlib.nullcontext()
    return _BlasThreads(int(n))


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
    if n * row_work <= BLAS_SERIAL_WORK:    # one block whose products BLAS runs on one thread
        fn(0, n)
        return
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
