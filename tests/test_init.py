"""Weight initializers: fans by hand, distributions against their formulas, dtypes, seeds, errors.

Statistical checks use a tolerance of 5 standard errors of the statistic (a false alarm
probability below 1e-6), computed from the sample size, not picked by eye.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layerkit as lk
from layerkit import init

RANDOM = [init.glorot_uniform, init.glorot_normal, init.kaiming_normal, init.kaiming_uniform,
          init.orthogonal]
ALL = [init.zeros, init.ones] + RANDOM


@pytest.mark.parametrize("shape, expected", [
    ((4, 3), (3, 4)),                # Linear(3, 4): weight (out, in)
    ((16, 4, 3), (12, 48)),          # Conv1D(4, 16, 3): 4·3, 16·3
    ((8, 3, 5, 5), (75, 200)),       # Conv2D(3, 8, 5): 3·25, 8·25
    ((6, 2, 3, 3, 3), (54, 162)),    # Conv3D(2, 6, 3): 2·27, 6·27
    ((7,), (7, 7)),                  # a 1-D weight: fan n both ways
])
def test_fans_by_hand(shape, expected):
    assert init.fans(shape) == expected


def test_fans_of_scalar_shape_raises():
    with pytest.raises(ValueError, match=r"fans: a weight needs at least one axis, got shape \(\)"):
        init.fans(())


def test_glorot_uniform_bounds_and_variance():
    m, n = 400, 600
    a = math.sqrt(6.0 / (m + n))
    w = init.glorot_uniform((m, n), rng=0, dtype=np.float64)
    assert np.abs(w).max() <= a
    assert np.abs(w).max() > 0.999 * a  # the bound is reached, not a narrower interval
    # Var(X²) = a⁴/5 − a⁴/9 for X ~ U(−a, a): relative standard error of the mean square √(0.8/N).
    se = math.sqrt(0.8 / w.size)
    assert np.mean(w) == pytest.approx(0.0, abs=5 * a / math.sqrt(3 * w.size))
    assert np.mean(w ** 2) == pytest.approx(a * a / 3, rel=5 * se)


def test_glorot_gain_scales_the_bound():
    w = init.glorot_uniform((30, 20), rng=1, dtype=np.float64, gain=2.0)
    assert 0.99 * 2 * math.sqrt(6 / 50) < np.abs(w).max() <= 2 * math.sqrt(6 / 50)


def test_glorot_normal_std():
    w = init.glorot_normal((400, 600), rng=2, dtype=np.float64)
    assert np.std(w) == pytest.approx(math.sqrt(2 / 1000), rel=5 / math.sqrt(2 * w.size))


@pytest.mark.parametrize("a, mode, fan", [
    (0.0, "fan_in", 64 * 9),
    (0.0, "fan_out", 128 * 9),
    (math.sqrt(5), "fan_in", 64 * 9),
    (math.sqrt(5), "fan_out", 128 * 9),
])
def test_kaiming_normal_std(a, mode, fan):
    w = init.kaiming_normal((128, 64, 3, 3), rng=3, dtype=np.float64, a=a, mode=mode)
    std = math.sqrt(2.0 / ((1 + a * a) * fan))
    # relative standard error of a sample standard deviation ≈ 1/√(2N)
    assert np.std(w) == pytest.approx(std, rel=5 / math.sqrt(2 * w.size))
    assert np.mean(w) == pytest.approx(0.0, abs=5 * std / math.sqrt(w.size))


def test_kaiming_uniform_bound():
    w = init.kaiming_uniform((200, 300), rng=4, dtype=np.float64, a=math.sqrt(5))
    bound = math.sqrt(6.0 / (6 * 300))  # √3·√(2/((1+5)·fan_in)) = 1/√300, PyTorch's Linear
    assert 0.999 * bound < np.abs(w).max() <= bound


@settings(deadline=None, max_examples=40)
@given(rows=st.integers(1, 12), cols=st.integers(1, 12),
       gain=st.floats(0.25, 4.0), seed=st.integers(0, 2 ** 32 - 1))
def test_orthogonal_rows_or_columns_orthonormal(rows, cols, gain, seed):
    q = init.orthogonal((rows, cols), rng=seed, dtype=np.float64, gain=gain)
    assert q.shape == (rows, cols)
    gram = q @ q.T if rows <= cols else q.T @ q
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), atol=1e-6)


def test_orthogonal_flattens_trailing_axes():
    q = init.orthogonal((4, 2, 3), rng=5, dtype=np.float64, gain=1.5)
    assert q.shape == (4, 2, 3)
    flat = q.reshape(4, 6)
    np.testing.assert_allclose(flat @ flat.T, 2.25 * np.eye(4), atol=1e-6)


def test_orthogonal_needs_two_axes():
    with pytest.raises(ValueError, match=r"orthogonal: needs a shape with at least 2 axes, got \(5,\)"):
        init.orthogonal((5,))


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float32"])
def test_dtype_honoured(fn, dtype):
    w = fn((6, 5), rng=0, dtype=dtype)
    assert w.dtype == np.dtype(dtype) and w.shape == (6, 5)


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.int32, np.float16])
def test_non_float_dtype_raises(fn, dtype):
    with pytest.raises(TypeError, match=rf"{fn.__name__}: dtype must be float32 or float64, got"):
        fn((6, 5), dtype=dtype)


def test_default_dtype_is_float32():
    assert all(fn((3, 2)).dtype == np.float32 for fn in ALL)


@pytest.mark.parametrize("fn", RANDOM, ids=lambda f: f.__name__)
def test_seeds(fn):
    a, b, c = fn((8, 5), rng=7), fn((8, 5), rng=7), fn((8, 5), rng=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(fn((8, 5), rng=np.random.default_rng(7)), a)


def test_bad_rng_raises():
    with pytest.raises(TypeError, match=r"rng must be None, an int seed or a numpy Generator, got str"):
        init.glorot_uniform((3, 2), rng="seed")


@pytest.mark.parametrize("fn", [init.kaiming_normal, init.kaiming_uniform], ids=lambda f: f.__name__)
def test_bad_mode_raises(fn):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: mode must be 'fan_in' or 'fan_out', "
                                         r"got 'fan_avg'"):
        fn((3, 2), mode="fan_avg")


@pytest.mark.parametrize("make", [
    lambda f: lk.Linear(3, 4, weight_init=f), lambda f: lk.Conv2D(3, 4, 3, weight_init=f),
    lambda f: lk.ConvTranspose2D(3, 4, 3, weight_init=f), lambda f: lk.Embedding(5, 4, weight_init=f)])
@pytest.mark.parametrize("init, match", [
    (lambda shape, rng=None, dtype=None: np.full(shape, np.nan), "weight with NaN or infinity"),
    (lambda shape, rng=None, dtype=None: np.full(shape, 1e300), r"weight with NaN or infinity \(in float32\)"),
    (lambda shape, rng=None, dtype=None: np.zeros((2, 2)), r"weight of shape \(2, 2\), expected"),
    (lambda shape, rng=None, dtype=None: [[0.0]], "must return a numpy array for weight, got list"),
    (lambda shape, rng=None, dtype=None: np.zeros(shape, complex), "dtype complex128")])
def test_constructor_refuses_a_bad_weight_init(make, init, match):
    with pytest.raises(ValueError, match=match):
        make(init)


def test_leaky_relu_refuses_infinite_slope():
    with pytest.raises(ValueError, match=r"LeakyReLU: negative_slope must be in \[0.0, inf\), got inf"):
        lk.LeakyReLU(float("inf"))
