"""The serial and the parallel build of each pooling kernel give the same results bit for bit.

The public kernel functions pick the parallel build from ``PARALLEL_MIN`` window taps on (with
several numba threads); the threshold is moved here so that each build runs on the same input.
"""

import numba
import numpy as np
import pytest

from layerkit.kernels import lppool, pooling


def _both_builds(monkeypatch, module, run):
    """run() once with the serial build forced and once with the parallel build forced."""
    if numba.get_num_threads() < 2:
        pytest.skip("the parallel build runs only with several numba threads")
    monkeypatch.setattr(module, "PARALLEL_MIN", 1 << 62)
    serial = run()
    monkeypatch.setattr(module, "PARALLEL_MIN", 0)
    parallel = run()
    return serial, parallel


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooling_builds_agree(monkeypatch, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3, 7, 9)).astype(dtype)          # (B, D, H, W) planes
    geo = (2, 3, 2, 1, 2, 2, 1, 1, 1, 1, 1, 0)                    # k, s, d (max only), p
    y_shape = (6, 3, 4, 5)
    dy = rng.standard_normal(y_shape).astype(dtype)
    x2 = rng.standard_normal((6, 8, 10)).astype(dtype)           # 2 × 2 fast path
    dy2 = rng.standard_normal((6, 4, 5)).astype(dtype)

    def run():
        y, am = np.empty(y_shape, dtype), np.empty(y_shape, np.int64)
        pooling.maxpool_forward(x, y, am, *geo)
        dx = np.zeros((6, 3 * 7 * 9), dtype)
        pooling.maxpool_backward_input(dy.reshape(6, -1), am.reshape(6, -1), dx)
        ya = np.empty(y_shape, dtype)
        pooling.avgpool_forward(x, ya, *geo[:6], *geo[9:])
        dxa = np.zeros_like(x)
        pooling.avgpool_backward_input(dy, dxa, *geo[:6], *geo[9:])
        y2, code = np.empty((6, 4, 5), dtype), np.empty((6, 4, 5), np.uint8)
        pooling.maxpool2x2_forward(x2, y2, code)
        dx2 = np.full_like(x2, np.nan)
        pooling.maxpool2x2_backward_input(dy2, code, dx2)
        return y, am, dx, ya, dxa, y2, code, dx2

    serial, parallel = _both_builds(monkeypatch, pooling, run)
    for s, p in zip(serial, parallel):
        np.testing.assert_array_equal(s, p)
    assert np.isfinite(serial[-1]).all()          # the 2 × 2 backward wrote every element


def test_lppool_builds_agree(monkeypatch):
    rng = np.random.default_rng(1)
    x = np.abs(rng.standard_normal((5, 1, 6, 7)))
    dy = rng.standard_normal((5, 1, 3, 3))

    def run():
        y, neg = np.empty((5, 1, 3, 3)), np.zeros(5, np.int64)
        lppool.lppool_forward(x, y, neg, 1, 2, 3, 1, 2, 2, 3.0)
        dx = np.zeros_like(x)
        lppool.lppool_backward_input(x, y, dy, dx, 1, 2, 3, 1, 2, 2, 3.0)
        return y, neg, dx

    serial, parallel = _both_builds(monkeypatch, lppool, run)
    for s, p in zip(serial, parallel):
        np.testing.assert_array_equal(s, p)
