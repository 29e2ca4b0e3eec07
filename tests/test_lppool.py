"""LPPool1D/2D: (Σ_window x^p)^(1/p) against hand-worked examples, a plain loop, PyTorch and
finite differences."""

import itertools
import math

import numpy as np
import pytest

import layerkit as lk
from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match

LP = {1: lk.LPPool1D, 2: lk.LPPool2D}


def ref_lppool(x, p, kernel, stride, ceil_mode=False):
    """The definition, one window at a time: taps inside the input only (ceil_mode)."""
    N, C, *sp = x.shape
    out = []
    for size, k, s in zip(sp, kernel, stride):
        o = (size - k) // s + 1
        if ceil_mode:
            o = math.ceil((size - k) / s) + 1
            o -= (o - 1) * s >= size
        out.append(o)
    y = np.zeros((N, C) + tuple(out))
    for n, c in itertools.product(range(N), range(C)):
        for o in itertools.product(*[range(m) for m in out]):
            total = 0.0
            for j in itertools.product(*[range(k) for k in kernel]):
                pos = tuple(o[a] * stride[a] + j[a] for a in range(len(sp)))
                if all(pos[a] < sp[a] for a in range(len(sp))):
                    total += float(x[(n, c) + pos]) ** p
            y[(n, c) + o] = total ** (1.0 / p)
    return y


def test_hand_worked_1d_with_a_zero_window():
    """(3, 4) -> 5 and (0, 0) -> 0; ∂y/∂x = x / y = (0.6, 0.8), and 0 for the zero window."""
    layer = lk.LPPool1D(2, 2)
    x = np.array([[[3.0, 4.0, 0.0, 0.0]]])
    np.testing.assert_array_equal(layer(x), [[[5.0, 0.0]]])
    np.testing.assert_allclose(layer.backward(np.ones((1, 1, 2))), [[[0.6, 0.8, 0.0, 0.0]]],
                               rtol=1e-15)


@pytest.mark.parametrize("p, expected", [(1, 9.0), (2, 5.0), (3, 81 ** (1 / 3))])
def test_hand_worked_2d(p, expected):
    """The window [[1, 2], [2, 4]]: Σx = 9, Σx² = 25, Σx³ = 81."""
    x = np.array([[[[1.0, 2.0], [2.0, 4.0]]]])
    y = lk.LPPool2D(p, 2)(x)
    assert y.shape == (1, 1, 1, 1) and y.item() == pytest.approx(expected, rel=1e-15)


def test_hand_worked_ceil_mode():
    """L = 5, K = S = 2: windows (0, 1), (2, 3) and the partial (4,): sqrt(1 + 4), 5, 2."""
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 2.0]]])
    np.testing.assert_allclose(lk.LPPool1D(2, 2, ceil_mode=True)(x),
                               [[[math.sqrt(5.0), 5.0, 2.0]]], rtol=1e-15)
    assert lk.LPPool1D(2, 2)(x).shape == (1, 1, 2)


CONFIGS = [  # ndim, shape, kernel, stride, ceil_mode
    (1, (2, 3, 9), 3, 2, False),
    (1, (2, 3, 8), 3, 2, True),
    (1, (1, 2, 7), 1, 3, True),
    (2, (2, 2, 6, 7), 2, None, False),
    (2, (2, 2, 7, 8), 3, 2, True),
    (2, (1, 3, 5, 6), (2, 3), (1, 2), False),
]


def inputs(shape, p, seed, dtype=np.float64):
    x = np.random.default_rng(seed).standard_normal(shape)
    if not float(p).is_integer() or p % 2:      # keep every power and window sum real
        x = np.abs(x) + 0.05
    return x.astype(dtype)


def _tuple(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("p", [1, 2, 3, 2.5, 4])
@pytest.mark.parametrize("ndim, shape, kernel, stride, ceil_mode", CONFIGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_plain_loop(p, ndim, shape, kernel, stride, ceil_mode, dtype):
    x = inputs(shape, p, 1, dtype)
    y = LP[ndim](p, kernel, stride=stride, ceil_mode=ceil_mode)(x)
    k = _tuple(kernel, ndim)
    expected = ref_lppool(x, p, k, _tuple(stride, ndim) if stride else k, ceil_mode)
    assert y.dtype == dtype and y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("p", [1, 2, 3, 2.5])
@pytest.mark.parametrize("ndim, shape, kernel, stride, ceil_mode", CONFIGS)
def test_matches_pytorch(p, ndim, shape, kernel, stride, ceil_mode):
    """Same outputs and gradients; with ceil_mode only the full windows (PyTorch rescales a
    partial window by K / taps), and the same output shape."""
    torch = torch_or_skip()
    x = inputs(shape, p, 2)
    layer = LP[ndim](p, kernel, stride=stride, ceil_mode=ceil_mode)
    y = layer(x)
    t = torch.tensor(x, requires_grad=True)
    fn = {1: torch.nn.functional.lp_pool1d, 2: torch.nn.functional.lp_pool2d}[ndim]
    yt = fn(t, p, kernel, stride=stride, ceil_mode=ceil_mode)
    assert y.shape == tuple(yt.shape)
    k = _tuple(kernel, ndim)
    s = _tuple(stride, ndim) if stride else k
    full = tuple(slice(0, (size - kk) // ss + 1) for size, kk, ss in zip(shape[2:], k, s))
    dy = np.zeros(y.shape)
    dy[(slice(None), slice(None)) + full] = np.random.default_rng(3).standard_normal(
        y[(slice(None), slice(None)) + full].shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y[(...,) + full], yt.detach().numpy()[(...,) + full],
                               rtol=1e-13)
    np.testing.assert_allclose(layer.backward(dy), t.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("p", [1, 2, 3, 2.5])
@pytest.mark.parametrize("ndim, shape, kernel, stride, ceil_mode", CONFIGS)
def test_gradcheck(p, ndim, shape, kernel, stride, ceil_mode):
    x = inputs(shape, p, 4)
    assert_gradients_match(LP[ndim](p, kernel, stride=stride, ceil_mode=ceil_mode), x)


def test_even_p_takes_signed_inputs_and_odd_p_signed_ones_with_positive_sums():
    x = np.array([[[-3.0, 4.0, 2.0, -1.0]]])
    np.testing.assert_allclose(lk.LPPool1D(2, 2)(x), [[[5.0, math.sqrt(5.0)]]], rtol=1e-15)
    np.testing.assert_allclose(lk.LPPool1D(3, 2)(x), [[[37 ** (1 / 3), 7 ** (1 / 3)]]],
                               rtol=1e-15)
    np.testing.assert_allclose(lk.LPPool1D(1, 2)(-x), [[[-1.0, -1.0]]], rtol=1e-15)


@pytest.mark.parametrize("p", [2, 3, 2.5])
def test_zero_windows_get_zero_gradient(p):
    layer = lk.LPPool2D(p, 2)
    x = np.zeros((1, 1, 2, 4))
    x[0, 0, :, 2:] = [[1.0, 2.0], [2.0, 3.0]]
    y = layer(x)
    assert y[0, 0, 0, 0] == 0.0
    dx = layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(dx[0, 0, :, :2], 0.0)
    assert np.all(np.isfinite(dx)) and np.all(dx[0, 0, :, 2:] > 0)


@pytest.mark.parametrize("dtype, scale", [(np.float32, 1e30), (np.float32, 1e-30),
                                          (np.float64, 1e200), (np.float64, 1e-200)])
def test_no_overflow_or_underflow_of_the_powers(dtype, scale):
    """x^p would overflow (or vanish) long before the result does: y = scale · ‖pattern‖_p."""
    pattern = np.array([[[3.0, 4.0, 1.0, 2.0]]])
    for p, expected in ((2, [5.0, math.sqrt(5.0)]), (4, [337 ** 0.25, 17 ** 0.25])):
        layer = lk.LPPool1D(p, 2)
        y = layer((pattern * scale).astype(dtype))
        np.testing.assert_allclose(y, scale * np.array([[expected]]), rtol=1e-6)
        dx = layer.backward(np.ones_like(y))
        assert np.all(np.isfinite(dx))


def test_float32_gradient_dtype_and_repr():
    layer = lk.LPPool2D(2, 3, stride=2)
    y = layer(np.ones((1, 1, 5, 5), dtype=np.float32))
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    assert repr(layer) == "LPPool2D(p=2, kernel_size=3, stride=2)"
    assert repr(lk.LPPool1D(2.5, 4, ceil_mode=True)) == "LPPool1D(p=2.5, kernel_size=4, ceil_mode=True)"


@pytest.mark.parametrize("kwargs, match", [
    (dict(p=0.5, kernel_size=2), r"^LPPool2D: p must be a finite number >= 1, got 0.5$"),
    (dict(p=math.inf, kernel_size=2), r"^LPPool2D: p must be a finite number >= 1, got inf$"),
    (dict(p=True, kernel_size=2), r"^LPPool2D: p must be a finite number >= 1, got True$"),
    (dict(p="2", kernel_size=2), r"^LPPool2D: p must be a finite number >= 1, got '2'$"),
    (dict(p=2, kernel_size=0), r"^LPPool2D: kernel_size must be an integer >= 1"),
    (dict(p=2, kernel_size=2, stride=(1, 2, 3)), r"^LPPool2D: stride must be an integer >= 1"),
    (dict(p=2, kernel_size=2, ceil_mode=1), r"^LPPool2D: ceil_mode must be True or False"),
])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lk.LPPool2D(**kwargs)


def test_bad_inputs():
    layer = lk.LPPool2D(2, 3)
    with pytest.raises(ValueError, match=r"^LPPool2D\(p=2, kernel_size=3\): expected x of shape "
                                         r"\(N, C, H, W\), got \(2, 5, 5\)"):
        layer(np.zeros((2, 5, 5)))
    with pytest.raises(TypeError, match=r"expected x of dtype float32 or float64, got int64"):
        layer(np.zeros((1, 1, 5, 5), dtype=np.int64))
    with pytest.raises(ValueError, match=r"the kernel \(extent 3 with dilation 1\) is larger "
                                         r"than the padded input along spatial axis 1"):
        layer(np.zeros((1, 1, 5, 2)))
    with pytest.raises(ValueError, match=r"^LPPool1D\(p=2.5, kernel_size=2\): x must be >= 0 for "
                                         r"a non-integer p .* got a minimum of -1.0"):
        lk.LPPool1D(2.5, 2)(np.array([[[1.0, -1.0]]]))
    with pytest.raises(ValueError, match=r"^LPPool1D\(p=3, kernel_size=2\): 1 window\(s\) have a "
                                         r"negative sum of x\^p, whose 1/p-th power is not "
                                         r"real \(p = 3, "):
        lk.LPPool1D(3, 2)(np.array([[[1.0, -2.0, 1.0, 1.0]]]))


def test_backward_errors():
    layer = lk.LPPool1D(2, 2)
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        layer.backward(np.zeros((1, 1, 2)))
    layer(np.ones((1, 1, 4)))
    with pytest.raises(ValueError, match=r"expected dy of shape \(1, 1, 2\) \(the output of "
                                         r"forward\), got \(1, 1, 3\)"):
        layer.backward(np.zeros((1, 1, 3)))


def test_backward_does_not_depend_on_the_callers_array_afterwards():
    layer = lk.LPPool1D(2, 2)
    x = np.array([[[3.0, 4.0]]])
    layer(x)
    x[...] = 100.0
    np.testing.assert_allclose(layer.backward(np.ones((1, 1, 1))), [[[0.6, 0.8]]], rtol=1e-15)
