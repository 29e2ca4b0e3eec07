"""LocalResponseNorm against a hand-worked example, a plain loop, PyTorch and finite
differences."""

import math

import numpy as np
import pytest

import layerkit as lk
from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match


def ref_lrn(x, size, alpha, beta, k):
    """The definition, one channel window at a time."""
    C = x.shape[1]
    y = np.zeros_like(x, dtype=np.float64)
    for c in range(C):
        lo, hi = max(0, c - size // 2), min(C - 1, c + (size - 1) // 2)
        d = k + alpha / size * np.sum(x[:, lo:hi + 1].astype(np.float64) ** 2, axis=1)
        y[:, c] = x[:, c] / d ** beta
    return y


def test_hand_worked_example():
    """C = 3, size 3, α = 3, β = 1, k = 1, x = (1, 2, 3) at one position:
    d = 1 + (1 + 4), 1 + (1 + 4 + 9), 1 + (4 + 9) = 6, 15, 14; y = 1/6, 2/15, 3/14.
    ∂y_0/∂x_0 = 1/d_0 − 2 x_0² / d_0² = 1/6 − 2/36 = 1/9 (β = 1, 2αβ/s = 2)."""
    layer = lk.LocalResponseNorm(3, alpha=3.0, beta=1.0, k=1.0)
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1)
    np.testing.assert_allclose(layer(x).ravel(), [1 / 6, 2 / 15, 3 / 14], rtol=1e-15)
    dy = np.array([1.0, 0.0, 0.0]).reshape(1, 3, 1)
    # ∂y_0/∂x_j: x_0 is in the windows of channels 0 and 1 only; y_0 depends on x_0, x_1
    np.testing.assert_allclose(layer.backward(dy).ravel(), [1 / 9, -2 * 1 * 2 / 36, 0.0],
                               rtol=1e-15, atol=1e-17)


SHAPES = [(2, 7, 3, 4), (3, 5, 6), (1, 4, 2, 2, 3)]
SIZES = [1, 2, 3, 5, 8]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_plain_loop(shape, size, dtype):
    x = (2 * np.random.default_rng(1).standard_normal(shape)).astype(dtype)
    y = lk.LocalResponseNorm(size, alpha=0.5, beta=0.75, k=2.0)(x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ref_lrn(x, size, 0.5, 0.75, 2.0),
                               rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("alpha, beta, k", [(1e-4, 0.75, 1.0), (0.3, 0.5, 1.5), (2.0, 1.3, 0.7)])
def test_matches_pytorch(shape, size, alpha, beta, k):
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    x = 2 * rng.standard_normal(shape)
    layer = lk.LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)
    y = layer(x)
    t = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.local_response_norm(t, size, alpha=alpha, beta=beta, k=k)
    dy = rng.standard_normal(shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(layer.backward(dy), t.grad.numpy(), rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", [1, 2, 5])
def test_gradcheck(shape, size):
    x = 2 * np.random.default_rng(3).standard_normal(shape)
    assert_gradients_match(lk.LocalResponseNorm(size, alpha=0.8, beta=0.75, k=1.0), x)


def test_alexnet_setting_and_repr():
    layer = lk.LocalResponseNorm(5, alpha=5e-4 * 5, beta=0.75, k=2.0)
    assert repr(layer) == "LocalResponseNorm(5, alpha=0.0025, beta=0.75, k=2)"
    x = np.zeros((1, 6, 2, 2), dtype=np.float32)
    np.testing.assert_array_equal(layer(x), x)          # d = k: zeros stay zeros
    x = np.ones((1, 1, 1), dtype=np.float32)
    assert layer(x).item() == pytest.approx((2 + 0.0025 / 5) ** -0.75, rel=1e-6)


def test_backward_does_not_depend_on_the_callers_array_afterwards():
    layer = lk.LocalResponseNorm(2, alpha=1.0)
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    layer(x)
    expected = layer.backward(np.ones_like(x))
    layer(x.copy())
    x[...] = 7.0
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), expected)


@pytest.mark.parametrize("kwargs, match", [
    (dict(size=0), r"^LocalResponseNorm: size must be a positive integer, got 0$"),
    (dict(size=2.0), r"^LocalResponseNorm: size must be a positive integer, got 2.0$"),
    (dict(size=2, alpha=-1.0), r"^LocalResponseNorm: alpha must be in \[0.0, inf\), got -1.0$"),
    (dict(size=2, beta=math.nan), r"^LocalResponseNorm: beta must be in \[0.0, inf\), got nan$"),
    (dict(size=2, k=0.0), r"^LocalResponseNorm: k must be in \(0.0, inf\), got 0.0$"),
    (dict(size=2, k=math.inf), r"^LocalResponseNorm: k must be in \(0.0, inf\), got inf$"),
])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lk.LocalResponseNorm(**kwargs)


def test_bad_inputs():
    layer = lk.LocalResponseNorm(3)
    with pytest.raises(ValueError, match=r"^LocalResponseNorm\(3, alpha=0.0001, beta=0.75, k=1\): "
                                         r"expected x of shape \(N, C, \*spatial\) with at least "
                                         r"one spatial axis, got \(4, 3\)"):
        layer(np.zeros((4, 3)))
    with pytest.raises(TypeError, match=r"expected x of dtype float32 or float64, got int64"):
        layer(np.zeros((1, 3, 2), dtype=np.int64))
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        layer.backward(np.zeros((1, 3, 2)))
    layer(np.zeros((1, 3, 2)))
    with pytest.raises(ValueError, match=r"expected dy of shape \(1, 3, 2\) \(the output of "
                                         r"forward\), got \(1, 2, 3\)"):
        layer.backward(np.zeros((1, 2, 3)))
