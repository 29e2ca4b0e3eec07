"""layerkit.threads: the BLAS thread limit of the recurrent time loops."""

import numpy as np
import pytest

import layerkit as lk
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
    layer = lk.RNN(3, 4, seed=0)
    x = np.ones((2, 5, 3), dtype=np.float32)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):   # as on a 2-core machine
        monkeypatch.setattr(np, "matmul", spy)
        layer.forward(x)
        monkeypatch.undo()
        assert set(_blas_threads_now()) == {2}                   # restored after the loop
    assert len(seen) == 5 and all(set(s) == {1} for s in seen)     # the 5 per-step products
