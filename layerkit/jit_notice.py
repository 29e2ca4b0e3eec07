"""Say on stderr when numba is about to compile layerkit's kernels for a while.

With a cold cache (the first run after installing, or after a kernel changed) numba compiles
each kernel on its first call, which takes seconds per kernel module and tens of seconds for
all of them; with a warm cache (``cache=True``) kernels load in milliseconds. :func:`install`
registers a listener for numba's ``"numba:compile"`` event, which numba fires only when it
really compiles (a cache hit fires nothing). At the first such event for a layerkit kernel,
the listener looks into that kernel's cache folder: the kernel modules without any index file
(``<module>.<function>-<line>.py<ver>.nbi``) are still to be compiled, and if their estimated
compile time is above :data:`THRESHOLD_S` it prints, once per process::

    compiling layerkit's kernels (first run only, up to ~43 s) ...
"""

from __future__ import annotations

import os
import sys

__all__ = ["install", "on_first_compile", "cold_modules", "estimate_s", "message", "announced",
           "COMPILE_S", "THRESHOLD_S"]

#: Estimated cold compile time of each kernel module in seconds: what the float64 checks of
#: `layerkit gradcheck` spent on each module's first cases with an empty cache, on 2 shared
#: cores (one build per kernel: float64, serial; float32 and parallel builds compile as well when
#: training calls them).
COMPILE_S = {"activations": 1.2, "conv": 10.0, "winograd": 4.6, "depthwise": 6.9, "pooling": 8.1,
             "lppool": 7.0, "recurrent": 11.5, "sigmoid_tanh": 0.3}
#: Compilation expected to take longer than this is announced.
THRESHOLD_S = 1.0
KERNELS_PACKAGE = "layerkit.kernels."

_state = {"listener": None, "checked": False}


def cold_modules(cache_dir) -> list:
    """The kernel modules of :data:`COMPILE_S` with no cache index file in ``cache_dir``."""
    try:
        names = os.listdir(cache_dir)
    except OSError:
        names = []
    warm = {n.split(".", 1)[0] for n in names if n.endswith(".nbi")}
    return [m for m in COMPILE_S if m not in warm]


def estimate_s(modules) -> float:
    """Estimated seconds to compile ``modules`` (kernel module names)."""
    return sum(COMPILE_S.get(m, 1.0) for m in modules)


def message(seconds: float, processes: int = 1) -> str:
    where = f" in {processes} processes" if processes > 1 else ""
    return f"compiling layerkit's kernels (first run only, up to ~{seconds:.0f} s{where}) ..."


def announced() -> None:
    """From now on this process prints no notice (it announced the compilation itself, or it
    is a worker compiling for a process that did)."""
    _state["checked"] = True


def on_first_compile(dispatcher, file=None) -> bool:
    """Called when numba starts compiling ``dispatcher``: the first time it is a layerkit
    kernel, print :func:`message` to ``file`` (stderr) if the cold modules' estimate exceeds
    :data:`THRESHOLD_S`. Returns whether it printed."""
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
    if _state["checked"] or not module.startswith(KERNELS_PACKAGE):
        return False
    _state["checked"] = True
    cache_dir = getattr(getattr(dispatcher, "_cache", None), "_cache_path", None)
    seconds = estimate_s(cold_modules(cache_dir)) if cache_dir else 0.0
    if seconds <= THRESHOLD_S:
        return False
    out = file if file is not None else sys.stderr
    bars = sys.modules.get("tqdm")
    if bars is not None and hasattr(bars, "tqdm"):
        bars.tqdm.write(message(seconds), file=out)        # on its own line, above any bar
    else:
        print(message(seconds), file=out, flush=True)
    return True


def install() -> None:
    """Register the listener with numba (once; a no-op when numba has no event API)."""
    if _state["listener"] is not None:
        return
    try:
        from numba.core import event
    except ImportError:
        return

    class _Listener(event.Listener):
        def on_start(self, ev):
            on_first_compile((ev.data or {}).get("dispatcher"))

        def on_end(self, ev):
            pass

    _state["listener"] = _Listener()
    event.register("numba:compile", _state["listener"])
