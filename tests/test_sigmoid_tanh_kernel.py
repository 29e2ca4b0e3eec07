"""The kernels' tanh (layerkit/kernels/tanh.py) against numpy's float64 tanh, the reference.

float32 data gets a rational approximation evaluated in float64; it must round to within 1 ulp
of the correctly rounded tanh for every float32 input checked. float64 data gets libm's tanh.
"""

import math
import warnings

import numba
import numpy as np
import pytest

from layerkit.kernels.sigmoid_tanh import CLIP, sigmoid, tanh, tanh_f32


@numba.njit(error_model="numpy")
def _tanh_loop(x, out):
    for k in range(x.size):
        out[k] = tanh(x[k], out)


@numba.njit(error_model="numpy")
def _sigmoid_loop(x, out):
    for k in range(x.size):
        out[k] = sigmoid(x[k], out)


def _float32_sweep():
    """Dense float32 inputs: uniform over [−12, 12], tiny magnitudes down to subnormals, and
    the neighbourhoods of the clamp and of 0.5, 1, 2, 4 where the rounding of tanh changes."""
    rng = np.random.default_rng(0)
    parts = [rng.uniform(-12, 12, 1_000_000),
             np.logspace(-45, 1.1, 200_000) * rng.choice([-1, 1], 200_000)]
    for centre in (0.5, 1.0, 2.0, 4.0, CLIP, 9.0):
        c = np.float32(centre)
        parts.append(np.nextafter(c, np.float32(np.inf)) + np.arange(-5000, 5000) * np.spacing(c))
    x = np.concatenate([p.astype(np.float32) for p in parts])
    return np.concatenate([x, -x, np.float32([0.0, 1.0, -1.0, 9.1, 20.0, 1e30, 3.4e38])])


def _ulp_error(got32, x32):
    ref = np.tanh(x32.astype(np.float64))
    ref32 = ref.astype(np.float32)
    return np.abs(got32.astype(np.float64) - ref) / np.spacing(np.abs(ref32)).astype(np.float64)


def test_float32_tanh_within_one_ulp_compiled():
    x = _float32_sweep()
    out = np.empty_like(x)
    _tanh_loop(x, out)
    err = _ulp_error(out, x)
    worst = np.argmax(err)
    assert err[worst] <= 1.0, f"tanh({x[worst]!r}) = {out[worst]!r}: {err[worst]:.2f} ulp off"
    # it rounds like the true tanh almost everywhere (not just within the bound)
    assert np.mean(out == np.tanh(x.astype(np.float64)).astype(np.float32)) > 0.999


def test_float32_tanh_python_path_matches_compiled():
    x = _float32_sweep()[::50]
    compiled = np.empty_like(x)
    _tanh_loop(x, compiled)
    like = np.empty(1, np.float32)
    python = np.array([tanh(v, like) for v in x], dtype=np.float32)
    assert np.array_equal(python, compiled)


def test_float32_tanh_special_values():
    x = np.float32([np.nan, np.inf, -np.inf, 0.0, -0.0])
    out = np.empty_like(x)
    _tanh_loop(x, out)
    assert np.isnan(out[0])
    assert out[1] == 1.0 and out[2] == -1.0
    assert out[3] == 0.0 and not np.signbit(out[3])
    assert out[4] == 0.0 and np.signbit(out[4])
    assert math.isnan(tanh_f32(np.float32(np.nan)))


def test_float64_uses_libm_tanh():
    x = np.concatenate([np.linspace(-30, 30, 10_001), [1e-300, -5e-324, 0.3]])
    out = np.empty_like(x)
    _tanh_loop(x, out)
    assert np.array_equal(out, [math.tanh(v) for v in x])


@pytest.mark.parametrize("dtype, tol", [(np.float32, 6e-8), (np.float64, 2e-16)])
def test_sigmoid_against_logistic(dtype, tol):
    x = np.concatenate([np.linspace(-60, 60, 200_001), [-1e4, 1e4, -np.inf, np.inf]]).astype(dtype)
    out = np.empty_like(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _sigmoid_loop(x, out)
    xd = x.astype(np.float64)
    ref = np.exp(-np.logaddexp(0.0, -xd))          # 1 / (1 + e^{−x}) without overflow
    assert np.max(np.abs(out - ref)) <= tol
    assert out[-2] == 0.0 and out[-1] == 1.0 and out[-4] == 0.0 and out[-3] == 1.0
