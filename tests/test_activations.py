import math
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import layerkit as lk
import reference as ref
from helpers import off_zero, torch_or_skip
from layerkit.testing import assert_gradients_match

SCALAR = {
    "ReLU": (lambda: lk.ReLU(), lambda v: max(v, 0.0)),
    "LeakyReLU": (lambda: lk.LeakyReLU(0.2), lambda v: v if v > 0 else 0.2 * v),
    "Sigmoid": (lambda: lk.Sigmoid(), ref.sigmoid_scalar),
    "Tanh": (lambda: lk.Tanh(), math.tanh),
}
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


@pytest.mark.parametrize("name", SCALAR)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_scalar_math(name, dtype):
    make, f = SCALAR[name]
    x = (3 * np.random.default_rng(0).standard_normal((3, 4, 5))).astype(dtype)
    y = make()(x)
    assert y.shape == x.shape and y.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, ref.elementwise(f, x), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", SCALAR)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_gradcheck(name, shape, seed):
    x = 2 * off_zero(np.random.default_rng(seed), shape)
    x.flat[0] = abs(x.flat[0])  # at least one positive input: a ReLU gradient that is not all zero
    assert_gradients_match(SCALAR[name][0](), x)


@pytest.mark.parametrize("name", SCALAR)
def test_backward_is_derivative_times_dy_float32(name):
    make, f = SCALAR[name]
    x = off_zero(np.random.default_rng(2), (4, 5)).astype(np.float32)
    dy = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    layer = make()
    layer(x)
    dx = layer.backward(dy)
    assert dx.dtype == np.float32
    h = 1e-6
    slope = (ref.elementwise(f, x.astype(np.float64) + h) - ref.elementwise(f, x.astype(np.float64) - h)) / (2 * h)
    np.testing.assert_allclose(dx, dy * slope, rtol=1e-4, atol=1e-6)


def test_relu_subderivative_at_zero_is_zero():
    layer = lk.ReLU()
    layer(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(layer.backward(np.ones(3)), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_are_stable_for_large_inputs(dtype):
    x = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            s = lk.Sigmoid()
            y = s(x)
            dx = s.backward(np.ones_like(x))
            t = lk.Tanh()(x)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx)) and np.all(np.isfinite(t))
    np.testing.assert_array_equal(y[[0, 1, 5, 6]], [0.0, 0.0, 1.0, 1.0])
    assert y[3] == 0.5
    np.testing.assert_array_equal(t[[0, 6]], [-1.0, 1.0])


def test_activations_match_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    x = off_zero(rng, (3, 7)) * 3
    dy = rng.standard_normal((3, 7))
    pairs = [(lk.ReLU(), torch.nn.ReLU()), (lk.LeakyReLU(0.3), torch.nn.LeakyReLU(0.3)),
             (lk.Sigmoid(), torch.nn.Sigmoid()), (lk.Tanh(), torch.nn.Tanh())]
    for ours, theirs in pairs:
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        yt.backward(torch.from_numpy(dy))
        np.testing.assert_allclose(ours(x), yt.detach().numpy(), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_activation_errors():
    with pytest.raises(TypeError, match=r"ReLU\(\): expected x of dtype float32 or float64, got int64"):
        lk.ReLU()(np.array([1, 2]))
    with pytest.raises(RuntimeError, match=r"Tanh\(\): backward called before forward"):
        lk.Tanh().backward(np.ones(2))
    s = lk.Sigmoid()
    s(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Sigmoid\(\): expected dy of shape \(2, 3\)"):
        s.backward(np.ones((3,)))
    with pytest.raises(ValueError, match=r"negative_slope must be in \[0.0, inf\), got -0.1"):
        lk.LeakyReLU(-0.1)
    assert repr(lk.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_kernel_special_values_and_layouts(dtype):
    """The ReLU kernels against numpy's definitions: NaN passes forward, ±inf, ±0, a
    non-contiguous input (a transposed view) and a float64 δ for a float32 layer."""
    rng = np.random.default_rng(9)
    base = rng.standard_normal((6, 7, 5)).astype(dtype)
    base[0, 0, :5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    x = base.transpose(2, 0, 1)                       # not C-contiguous
    layer = lk.ReLU()
    y = layer(x)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, np.where(np.isnan(x), np.nan, np.where(x > 0, x, 0)))
    dy = rng.standard_normal(x.shape)                  # float64 δ
    dx = layer.backward(dy)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, np.where(x > 0, dy, 0).astype(dtype))
