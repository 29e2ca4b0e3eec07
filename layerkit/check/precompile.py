"""Fill numba's on-disk cache in worker processes while the checker goes on.

Numba caches each kernel per signature on disk (``cache=True``), and a process that meets a
signature for the first time loads it from there when another process has already compiled it.
With a cold cache, :class:`Background` runs ``warm(*job)`` for every job in a pool of
spawned processes (each compiles what its job calls and writes the cache); the caller waits for
job ``k`` with :meth:`Background.wait` just before doing the same work itself, which then loads
the kernels instead of compiling them. On ``cores`` cores the compile time divides by up to
``cores``; a warm cache, no idle core or ``NUMBA_DISABLE_JIT`` start no pool.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from .. import jit_notice
from ..kernels import activations

__all__ = ["kernel_cache_dir", "cold_kernel_modules", "cores", "idle_cores", "Background"]


def kernel_cache_dir():
    """The folder numba caches layerkit's kernels in, or None when nothing compiles
    (``NUMBA_DISABLE_JIT``: the kernels are plain Python functions)."""
    cache = getattr(activations.relu_forward, "_cache", None)
    return getattr(cache, "_cache_path", None)


def cold_kernel_modules() -> list:
    """The kernel modules with nothing in numba's cache yet ([] when nothing compiles)."""
    folder = kernel_cache_dir()
    return jit_notice.cold_modules(folder) if folder else []


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        return os.cpu_count() or 1


def idle_cores() -> int:
    """Cores left idle by the other programs running (the load average of the last minute):
    worker processes pay only there; on cores others keep busy they only add their own start."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0
    return max(0, int(cores() - load))


class Background:
    """``warm(*job)`` for each of ``jobs`` in ``processes`` spawned worker processes."""

    def __init__(self, warm, jobs, processes: int):
        self.processes = processes
        self._pool = ProcessPoolExecutor(processes,
                                         mp_context=multiprocessing.get_context("spawn"))
        self._futures = [self._pool.submit(warm, *job) for job in jobs]

    def wait(self, k: int) -> None:
        """Block until job ``k`` has finished; its failure is not raised here (the caller's
        own run of the same work reports it)."""
        self._futures[k].exception()

    def close(self) -> None:
        """Drop the jobs not started yet and wait for the workers to exit."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
