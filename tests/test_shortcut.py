"""ZeroPadShortcut (ResNet option A): a hand-worked example, a plain loop, finite differences,
and inside a Residual."""

import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_gradients_match


def test_hand_worked_example():
    """C 1 -> 3, stride 2 on a 3 × 3 plane: positions (0, 0), (0, 2), (2, 0), (2, 2) kept in
    channel lo = 1; channels 0 and 2 are zeros."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    layer = lk.ZeroPadShortcut(1, 3, stride=2)
    y = layer(x)
    assert y.shape == (1, 3, 2, 2)
    np.testing.assert_array_equal(y[0, 1], [[0.0, 2.0], [6.0, 8.0]])
    np.testing.assert_array_equal(y[0, [0, 2]], 0.0)
    dy = np.arange(12.0).reshape(1, 3, 2, 2)
    np.testing.assert_array_equal(layer.backward(dy)[0, 0],
                                  [[4.0, 0.0, 5.0], [0.0, 0.0, 0.0], [6.0, 0.0, 7.0]])


@pytest.mark.parametrize("c_in, c_out, stride, spatial", [(16, 32, 2, (8, 8)), (3, 8, 2, (5, 4)),
                                                          (4, 4, 1, (3, 3)), (2, 5, 3, (7,))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_plain_loop(c_in, c_out, stride, spatial, dtype):
    x = np.random.default_rng(0).standard_normal((2, c_in) + spatial).astype(dtype)
    y = lk.ZeroPadShortcut(c_in, c_out, stride=stride)(x)
    lo = (c_out - c_in) // 2
    out = tuple(-(-s // stride) for s in spatial)
    expected = np.zeros((2, c_out) + out, dtype=dtype)
    for n in range(2):
        for c in range(c_in):
            for o in np.ndindex(out):
                expected[(n, lo + c) + o] = x[(n, c) + tuple(stride * i for i in o)]
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, expected)


def test_gradcheck_alone_and_in_a_residual():
    rng = np.random.default_rng(1)
    assert_gradients_match(lk.ZeroPadShortcut(3, 6, stride=2), rng.standard_normal((2, 3, 5, 5)))
    block = lk.Sequential(lk.Conv2D(3, 6, 3, stride=2, padding=1, dtype=np.float64, seed=0),
                          lk.Tanh())
    res = lk.Residual(block, lk.ZeroPadShortcut(3, 6, stride=2))
    assert res(rng.standard_normal((2, 3, 6, 6))).shape == (2, 6, 3, 3)
    assert_gradients_match(res, rng.standard_normal((2, 3, 6, 6)))


def test_repr_and_errors():
    assert repr(lk.ZeroPadShortcut(16, 32)) == "ZeroPadShortcut(16, 32, stride=2)"
    with pytest.raises(ValueError, match=r"^ZeroPadShortcut: out_channels must be >= in_channels "
                                         r"\(channels are only added\), got 8 -> 4$"):
        lk.ZeroPadShortcut(8, 4)
    with pytest.raises(ValueError, match=r"^ZeroPadShortcut: stride must be a positive integer"):
        lk.ZeroPadShortcut(4, 8, stride=0)
    layer = lk.ZeroPadShortcut(4, 8)
    with pytest.raises(ValueError, match=r"^ZeroPadShortcut\(4, 8, stride=2\): expected x of "
                                         r"shape \(N, 4, \*spatial\), got \(2, 3, 4, 4\)"):
        layer(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 4, \*spatial\), got \(2, 4\)"):
        layer(np.zeros((2, 4)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.zeros((2, 8, 2, 2)))
    layer(np.zeros((2, 4, 4, 4)))
    with pytest.raises(ValueError, match=r"expected dy of shape \(2, 8, 2, 2\)"):
        layer.backward(np.zeros((2, 4, 2, 2)))
