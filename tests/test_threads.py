"""layerkit.threads: the BLAS thread limit of the recurrent time loops."""

import contextlib

import numpy as np
import pytest

import layerkit as lk
from layerkit import threads
from layerkit.threads import blas_threads


def _blas_threads_now():
    """Threads of numpy's own BLAS (other BLAS copies, e.g. scipy's, may be loaded too)."""
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="needs threadpoolctl (train extra)")
    info = [i for i in threadpoolctl.threadpool_info()
            if i["user_api"] == "blas" and "numpy" in i["filepath"]]
    assert info, "numpy's BLAS library not found by threadpoolctl"
    return [i["num_threads"] for i in info]


def test_limit_applies_inside_and_is_restored():
    before = _blas_threads_now()
    with blas_threads(1):
        assert set(_blas_threads_now()) == {1}
    assert _blas_threads_now() == before
    with blas_threads(None):                       # None: leave the setting alone
        assert _blas_threads_now() == before


def test_recurrent_time_loop_runs_on_one_blas_thread(monkeypatch):
    seen = []
    real_matmul = np.matmul

    def spy(*args, **kwargs):
        seen.append(_blas_threads_now())
        return real_matmul(*args, **kwargs)

    threadpoolctl = pytest.importorskip("threadpoolctl", reason="needs threadpoolctl (train extra)")
    layer = lk.RNN(3, 256, seed=0)          # per-step products of 8 · 256 · 256 multiply-adds
    x = np.ones((8, 5, 3), dtype=np.float32)
    assert 8 * 256 * 256 > threads.BLAS_SERIAL_WORK
    with threadpoolctl.threadpool_limits(2, user_api="blas"):   # as on a 2-core machine
        monkeypatch.setattr(np, "matmul", spy)
        layer.forward(x)
        monkeypatch.undo()
        assert set(_blas_threads_now()) == {2}                   # restored after the loop
    assert len(seen) == 5 and all(set(s) == {1} for s in seen)     # the 5 per-step products


def test_products_that_blas_runs_serially_leave_the_thread_setting_alone(monkeypatch):
    """Below BLAS_SERIAL_WORK (OpenBLAS puts such a GEMM on one thread by itself) the block runs
    directly: no thread limit is set and restored around it."""
    pytest.importorskip("threadpoolctl", reason="needs threadpoolctl (train extra)")
    entered = []
    monkeypatch.setattr(threads, "blas_threads", lambda n: entered.append(n) or
                        contextlib.nullcontext())
    calls = []
    threads.run_batch_blocks(lambda lo, hi: calls.append((lo, hi)), 4,
                             threads.BLAS_SERIAL_WORK // 4)
    assert calls == [(0, 4)] and entered == []
    threads.run_batch_blocks(lambda lo, hi: calls.append((lo, hi)), 4,
                             threads.BLAS_SERIAL_WORK // 4 + 1)
    assert entered == [1]


# -- batch blocks: the time loop split over threads by rows -----------------------------------------

@pytest.mark.parametrize("n, threads, row_work, expect", [
    (64, 2, 4 * 256 * 256, [(0, 32), (32, 64)]),        # large LSTM: two blocks
    (64, 1, 4 * 256 * 256, [(0, 64)]),                  # one thread: one block
    (32, 2, 4 * 128 * 128, [(0, 16), (16, 32)]),        # small LSTM: 2^20 per block, enough
    (32, 2, 128 * 128, [(0, 32)]),                      # small RNN: 2^19 in all, too little
    (16, 2, 3 * 128 * 128, [(0, 16)]),                  # 1.5 · 2^19 in all: too little
    (12, 2, 10 ** 9, [(0, 12)]),                        # fewer than 2 × MIN_ROWS rows
    (50, 3, 10 ** 9, [(0, 16), (16, 33), (33, 50)]),
])
def test_batch_blocks(monkeypatch, n, threads, row_work, expect):
    monkeypatch.setattr(lk.threads, "_threads", lambda: threads)
    assert lk.threads.batch_blocks(n, row_work) == expect


def test_batch_blocks_of_large_units(monkeypatch):
    """Callers whose rows are large units of work (Winograd's tile groups) lower the minimum
    block size; the default follows MIN_ROWS at call time."""
    monkeypatch.setattr(lk.threads, "_threads", lambda: 2)
    assert lk.threads.batch_blocks(3, 10 ** 9) == [(0, 3)]
    assert lk.threads.batch_blocks(3, 10 ** 9, min_rows=1) == [(0, 1), (1, 3)]
    monkeypatch.setattr(lk.threads, "MIN_ROWS", 1)
    assert lk.threads.batch_blocks(3, 10 ** 9) == [(0, 1), (1, 3)]


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_give_the_serial_results(monkeypatch, kind, dtype):
    """The same layer, inputs and lengths run as one block and as three row blocks in threads
    (each with its own BLAS calls on row slices): outputs, final states, input, state and
    parameter gradients agree to a few rounding errors."""
    pytest.importorskip("threadpoolctl", reason="blocks need threadpoolctl (train extra)")
    cls, extra = {"rnn_tanh": (lk.RNN, {}), "rnn_relu": (lk.RNN, {"nonlinearity": "relu"}),
                  "lstm": (lk.LSTM, {}), "gru": (lk.GRU, {})}[kind]
    rng = np.random.default_rng(3)
    n, t, d, h = 27, 6, 5, 11
    x = rng.standard_normal((n, t, d)).astype(dtype)
    lens = rng.integers(1, t + 1, n)
    dy = rng.standard_normal((n, t, h)).astype(dtype)
    results = []
    for threads in (1, 3):
        monkeypatch.setattr(lk.threads, "_threads", lambda: threads)
        monkeypatch.setattr(lk.threads, "MIN_ROWS", 1)
        monkeypatch.setattr(lk.threads, "MIN_STEP_WORK", 1)
        assert len(lk.threads.batch_blocks(n, 1)) == threads
        layer = cls(d, h, dtype=dtype, seed=0, **extra)
        outs = layer.forward(x, lengths=lens)
        dx = layer.backward(dy)
        results.append([*outs, dx, layer.dh0, *(layer.grads[k] for k in sorted(layer.grads))])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for serial, blocked in zip(*results):
        np.testing.assert_allclose(blocked, serial, rtol=tol, atol=tol)


def test_an_error_in_a_block_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(lk.threads, "_threads", lambda: 2)
    done = []

    def fn(lo, hi):
        if lo > 0:
            raise ValueError(f"block {lo}:{hi} failed")
        done.append((lo, hi))

    with pytest.raises(ValueError, match="block 32:64 failed"):
        lk.threads.run_batch_blocks(fn, 64, 10 ** 9)
    assert done == [(0, 32)]


def test_no_blocks_without_threadpoolctl(monkeypatch):
    """Without a way to limit BLAS to one thread per block, blocks would oversubscribe."""
    monkeypatch.setattr(lk.threads, "_threads", lambda: 2)
    monkeypatch.setattr(lk.threads, "_controller", lambda: None)
    calls = []
    lk.threads.run_batch_blocks(lambda lo, hi: calls.append((lo, hi)), 64, 10 ** 9)
    assert calls == [(0, 64)]


# -- pools of libraries loaded before layerkit ------------------------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
POOL_VARS = ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT")


def _run_fresh(code, **env_extra):
    """Run ``code`` in a fresh interpreter with this worktree's layerkit and a user's environment
    (none of the pool variables set unless given); returns (stdout, stderr)."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in POOL_VARS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(env_extra)
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout, res.stderr


NUMPY_FIRST = """
import ctypes, numpy
import layerkit
from layerkit.threads import SETTLED, loaded_libraries
[path] = [p for p in loaded_libraries("openblas") if "numpy" in p]
print(ctypes.CDLL(path).openblas_thread_timeout(), path in SETTLED.get("openblas_restarted", []))
numpy.ones((300, 300)) @ numpy.ones((300, 300))       # the restarted pool still computes
"""


def test_numpy_loaded_first_gets_the_short_blas_timeout():
    if "openblas" not in str(__import__("numpy").show_config(mode="dicts")).lower():
        pytest.skip("numpy is not built with OpenBLAS")
    out, _ = _run_fresh(NUMPY_FIRST)
    assert out.split() == ["4", "True"]


def test_a_timeout_the_user_set_is_kept():
    if "openblas" not in str(__import__("numpy").show_config(mode="dicts")).lower():
        pytest.skip("numpy is not built with OpenBLAS")
    out, _ = _run_fresh(NUMPY_FIRST, OPENBLAS_THREAD_TIMEOUT="10")
    assert out.split() == ["10", "False"]


def test_an_openmp_loaded_first_leaves_numba_its_own():
    """An OpenMP runtime loaded into the global symbol scope before layerkit (as torch loads its
    libgomp) must not become the runtime of numba's parallel kernels: the dynamic linker's
    bindings of numba's OpenMP layer are inspected (LD_DEBUG)."""
    import importlib.util
    import sys
    from pathlib import Path
    if not sys.platform.startswith("linux"):
        pytest.skip("RTLD_DEEPBIND and LD_DEBUG are glibc's")
    spec = importlib.util.find_spec("torch")
    foreign = [p for loc in (spec.submodule_search_locations if spec else [])
               for p in Path(loc, "lib").glob("libgomp*.so*")]
    if not foreign:
        pytest.skip("no second libgomp to load first (torch's, from the crosscheck extra)")
    code = ("import ctypes, os\n"
            f"ctypes.CDLL({str(foreign[0])!r}, mode=os.RTLD_GLOBAL)   # what import torch does\n"
            "import layerkit, numba\n"
            "numba.get_num_threads()\n"
            "print(layerkit.threads.SETTLED.get('numba_deepbind'), numba.threading_layer())\n")
    out, err = _run_fresh(code, LD_DEBUG="bindings")
    deepbind, layer = out.split()
    if layer != "omp":
        pytest.skip(f"numba's threading layer is {layer}, not OpenMP")
    bound = {line.split(" to ")[1].split()[0] for line in err.splitlines()
             if "omppool" in line.split(" to ")[0] and "GOMP_parallel" in line}
    assert deepbind == "True" and bound and str(foreign[0]) not in bound, bound


@pytest.mark.parametrize("daemon, restarted", [(False, 0), (True, 1)])
def test_other_threads_and_the_restart(daemon, restarted):
    """A non-daemon thread (it might be inside a BLAS call) keeps the pools as they are; daemon
    threads (a notebook kernel's heartbeat and I/O) do not."""
    if "openblas" not in str(__import__("numpy").show_config(mode="dicts")).lower():
        pytest.skip("numpy is not built with OpenBLAS")
    code = ("import threading, numpy\n"
            "stop = threading.Event()\n"
            f"t = threading.Thread(target=stop.wait, daemon={daemon}); t.start()\n"
            "import layerkit\n"
            "stop.set(); t.join()\n"
            "print(len(layerkit.threads.SETTLED['openblas_restarted']))\n")
    out, _ = _run_fresh(code)
    assert out.split() == [str(restarted)]


def test_nested_limits_restore_in_order():
    before = _blas_threads_now()
    with blas_threads(2):
        with blas_threads(1):
            assert set(_blas_threads_now()) == {1}
            with blas_threads(1):                  # already 1: nothing to change or restore
                assert set(_blas_threads_now()) == {1}
            assert set(_blas_threads_now()) == {1}
        assert set(_blas_threads_now()) == {2}
    assert _blas_threads_now() == before
