import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match
from layerkit.layers.pooling import (AvgPool1D, AvgPool2D, AvgPool3D, GlobalAvgPool, MaxPool1D,
                                     MaxPool2D, MaxPool3D)

MAX = {1: MaxPool1D, 2: MaxPool2D, 3: MaxPool3D}
AVG = {1: AvgPool1D, 2: AvgPool2D, 3: AvgPool3D}


# =================================================================================================
# Slow plain-loop references (independent of the kernels: itertools over every window and tap).
# =================================================================================================
def _windows(spatial, kernel, stride, padding, dilation):
    """Yield (output position, list of (tap in range?, input position)) in row-major tap order."""
    n = len(spatial)
    out = [(spatial[a] + 2 * padding[a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
           for a in range(n)]
    for o in itertools.product(*[range(m) for m in out]):
        taps = []
        for j in itertools.product(*[range(k) for k in kernel]):
            pos = tuple(o[a] * stride[a] - padding[a] + j[a] * dilation[a] for a in range(n))
            taps.append((all(0 <= pos[a] < spatial[a] for a in range(n)), pos))
        yield o, taps


def _out_shape(spatial, kernel, stride, padding, dilation):
    return tuple((spatial[a] + 2 * padding[a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
                 for a in range(len(spatial)))


def ref_maxpool(x, kernel, stride, padding, dilation):
    """(y, flat argmax into the unpadded plane); padding is −∞; first maximum wins.
    Returns None if some window holds only padding."""
    N, C, *sp = x.shape
    out = _out_shape(sp, kernel, stride, padding, dilation)
    y = np.zeros((N, C) + out, dtype=x.dtype)
    idx = np.zeros((N, C) + out, dtype=np.int64)
    for n, c in itertools.product(range(N), range(C)):
        for o, taps in _windows(sp, kernel, stride, padding, dilation):
            best, best_pos = -np.inf, None
            for inside, pos in taps:
                if inside and (best_pos is None or x[(n, c) + pos] > best):
                    best, best_pos = x[(n, c) + pos], pos
            if best_pos is None:
                return None
            y[(n, c) + o] = best
            idx[(n, c) + o] = np.ravel_multi_index(best_pos, sp)
    return y, idx


def ref_maxpool_backward(dy, idx, x_shape):
    dx = np.zeros(x_shape)
    for n, c in itertools.product(range(x_shape[0]), range(x_shape[1])):
        plane = dx[n, c].reshape(-1)
        for o in np.ndindex(*dy.shape[2:]):
            plane[idx[(n, c) + o]] += dy[(n, c) + o]
    return dx


def ref_avgpool(x, kernel, stride, padding):
    """Zero padding, divisor = full window size (count_include_pad=True)."""
    N, C, *sp = x.shape
    ones = (1,) * len(sp)
    out = _out_shape(sp, kernel, stride, padding, ones)
    y = np.zeros((N, C) + out, dtype=np.float64)
    for n, c in itertools.product(range(N), range(C)):
        for o, taps in _windows(sp, kernel, stride, padding, ones):
            y[(n, c) + o] = sum(float(x[(n, c) + pos]) for inside, pos in taps if inside) / len(taps)
    return y


def ref_avgpool_backward(dy, x_shape, kernel, stride, padding):
    sp = x_shape[2:]
    ones = (1,) * len(sp)
    dx = np.zeros(x_shape)
    for n, c in itertools.product(range(x_shape[0]), range(x_shape[1])):
        for o, taps in _windows(sp, kernel, stride, padding, ones):
            for inside, pos in taps:
                if inside:
                    dx[(n, c) + pos] += dy[(n, c) + o] / len(taps)
    return dx


# =================================================================================================
# Strategies and helpers
# =================================================================================================
@st.composite
def geometries(draw, max_dilation=1):
    """ndim, kernel, stride (may exceed the kernel), padding <= K//2, dilation, input shape."""
    n = draw(st.integers(1, 3))
    kernel, stride, padding, dilation, spatial = [], [], [], [], []
    for _ in range(n):
        k = draw(st.integers(1, 3 if n < 3 else 2))
        d = draw(st.integers(1, max_dilation))
        p = draw(st.integers(0, k // 2))
        extent = d * (k - 1) + 1
        lo = max(1, extent - 2 * p)
        kernel.append(k); dilation.append(d); padding.append(p)
        stride.append(draw(st.integers(1, 4)))
        spatial.append(draw(st.integers(lo, lo + (5 if n < 3 else 2))))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + tuple(spatial)
    return n, tuple(kernel), tuple(stride), tuple(padding), tuple(dilation), shape


def distinct(shape, seed=0, spacing=0.01):
    """Tie-free values: a random permutation of 0..size-1, neighbours spacing apart (≫ 1e-4)."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * spacing


LECTURE = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=np.float64)


# =================================================================================================
# Worked examples
# =================================================================================================
def test_lecture_max_pooling_example():
    layer = MaxPool2D(2, stride=2)
    y = layer(LECTURE[None, None])
    np.testing.assert_array_equal(y[0, 0], [[6, 8], [3, 4]])
    dx = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0, 0], [0, 1, 0, 2], [3, 0, 0, 0], [0, 0, 0, 4]])


def test_lecture_avg_pooling_example():
    # by hand: (1+1+5+6)/4 = 3.25, (2+4+7+8)/4 = 5.25, (3+2+1+2)/4 = 2, (1+0+3+4)/4 = 2
    layer = AvgPool2D(2, stride=2)
    y = layer(LECTURE[None, None])
    np.testing.assert_array_equal(y[0, 0], [[3.25, 5.25], [2.0, 2.0]])
    dx = layer.backward(np.array([[[[4.0, 8.0], [-4.0, 0.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [-1, -1, 0, 0], [-1, -1, 0, 0]])


def test_return_indices_hand_example():
    y, idx = MaxPool2D(2, return_indices=True)(LECTURE[None, None])
    np.testing.assert_array_equal(y[0, 0], [[6, 8], [3, 4]])
    # 6 at (1, 1) → 1·4 + 1 = 5; 8 at (1, 3) → 7; 3 at (2, 0) → 8; 4 at (3, 3) → 15
    np.testing.assert_array_equal(idx[0, 0], [[5, 7], [8, 15]])
    assert idx.dtype == np.int64
    # padding shifts no index: positions are into the unpadded row [0, 1, 2, 3, 4]
    y1, idx1 = MaxPool1D(3, padding=1, return_indices=True)(np.arange(5.0)[None, None])
    np.testing.assert_array_equal(y1, [[[1.0, 4.0]]])
    np.testing.assert_array_equal(idx1, [[[1, 4]]])


def test_return_indices_backward_takes_only_dy():
    layer = MaxPool2D(2, return_indices=True)
    y, _ = layer(LECTURE[None, None])
    dx = layer.backward(np.ones_like(y))
    assert dx.sum() == 4 and dx[0, 0, 1, 1] == 1


def test_non_square_window_and_stride():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    np.testing.assert_array_equal(MaxPool2D((1, 2))(x)[0, 0], [[1, 3], [5, 7], [9, 11]])
    np.testing.assert_array_equal(AvgPool2D((1, 2))(x)[0, 0], [[0.5, 2.5], [4.5, 6.5], [8.5, 10.5]])
    np.testing.assert_array_equal(MaxPool2D((3, 1), stride=(1, 3))(x)[0, 0], [[8, 11]])


def test_uncovered_trailing_rows_are_ignored():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 4, :] = 100.0       # last row: no full 2×2/2 window reaches it
    layer = MaxPool2D(2)
    y = layer(x)
    assert y.shape == (1, 1, 2, 2) and not y.any()
    assert not layer.backward(np.ones_like(y))[0, 0, 4].any()


# =================================================================================================
# Forward (and backward) against the plain-loop references
# =================================================================================================
@settings(max_examples=25)
@given(geom=geometries(max_dilation=2), dtype=st.sampled_from([np.float32, np.float64]),
       ties=st.booleans(), seed=st.integers(0, 2**16))
def test_maxpool_matches_reference(geom, dtype, ties, seed):
    n, kernel, stride, padding, dilation, shape = geom
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(dtype)
    layer = MAX[n](kernel, stride=stride, padding=padding, dilation=dilation, return_indices=True)
    expected = ref_maxpool(x, kernel, stride, padding, dilation)
    if expected is None:      # dilation made a window skip the whole input
        with pytest.raises(ValueError, match="holds only padding"):
            layer(x)
        return
    y, idx = layer(x)
    assert y.dtype == dtype and y.shape == expected[0].shape
    np.testing.assert_array_equal(y, expected[0])
    np.testing.assert_array_equal(idx, expected[1])     # includes the tie rule when ties=True
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    assert dx.dtype == dtype and dx.shape == x.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dx, ref_maxpool_backward(dy, expected[1], x.shape), rtol=tol, atol=tol)


@settings(max_examples=25)
@given(geom=geometries(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_avgpool_matches_reference(geom, dtype, seed):
    n, kernel, stride, padding, _, shape = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    layer = AVG[n](kernel, stride=stride, padding=padding)
    y = layer(x)
    expected = ref_avgpool(x, kernel, stride, padding)
    assert y.dtype == dtype and y.shape == expected.shape
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(dx, ref_avgpool_backward(dy, x.shape, kernel, stride, padding),
                               rtol=10 * tol, atol=10 * tol)


def test_maxpool_padding_is_never_selected():
    x = -1.0 - np.random.default_rng(0).random((2, 3, 5, 6))       # all negative
    layer = MaxPool2D(3, stride=2, padding=1, return_indices=True)
    y, idx = layer(x)
    assert (y < -1.0 + 1e-12).all()          # zero padding would have produced 0 at the borders
    y_ref, idx_ref = ref_maxpool(x, (3, 3), (2, 2), (1, 1), (1, 1))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    assert ((idx >= 0) & (idx < 30)).all()
    dx = layer.backward(np.ones_like(y))
    assert dx.sum() == y.size                # every δ lands inside the input


def test_tie_rule_first_maximum_gets_the_gradient():
    x = np.full((1, 1, 2, 2), 3.0)
    layer = MaxPool2D(2)
    layer(x)
    np.testing.assert_array_equal(layer.backward(np.array([[[[5.0]]]]))[0, 0], [[5, 0], [0, 0]])
    # a later tie does not displace an earlier maximum in row-major order
    x = np.array([[[[1.0, 7.0, 2.0], [7.0, 0.0, 7.0]]]])
    y, idx = MaxPool2D((2, 3), return_indices=True)(x)
    assert y.item() == 7.0 and idx.item() == 1
    x3 = np.zeros((1, 1, 2, 2, 2))
    layer3 = MaxPool3D(2)
    layer3(x3)
    dx3 = layer3.backward(np.ones((1, 1, 1, 1, 1)))
    assert dx3[0, 0, 0, 0, 0] == 1 and dx3.sum() == 1


def test_nan_propagates_through_max():
    x = np.array([[[1.0, np.nan, 3.0, 2.0]]])
    y, idx = MaxPool1D(2, return_indices=True)(x)
    assert np.isnan(y[0, 0, 0]) and idx[0, 0, 0] == 1 and y[0, 0, 1] == 3.0


def test_non_contiguous_input():
    x = np.random.default_rng(0).standard_normal((4, 4, 3, 2)).transpose(3, 2, 1, 0)   # (2, 3, 4, 4)
    np.testing.assert_array_equal(MaxPool2D(2)(x), MaxPool2D(2)(np.ascontiguousarray(x)))
    np.testing.assert_allclose(AvgPool2D(2)(x), AvgPool2D(2)(np.ascontiguousarray(x)))


def test_backward_dtype_follows_input_not_dy():
    for layer in (MaxPool2D(2), AvgPool2D(2), GlobalAvgPool()):
        y = layer(np.ones((1, 2, 4, 4), dtype=np.float32))
        assert y.dtype == np.float32
        assert layer.backward(np.ones(y.shape, dtype=np.float64)).dtype == np.float32


# =================================================================================================
# Gradient checks (float64, tie-free inputs)
# =================================================================================================
GRAD_CASES = [
    (MaxPool1D, dict(kernel_size=3, stride=2, padding=1), (2, 3, 9)),
    (MaxPool1D, dict(kernel_size=2, dilation=2), (1, 2, 7)),
    (MaxPool2D, dict(kernel_size=2), (2, 3, 6, 6)),
    (MaxPool2D, dict(kernel_size=3, stride=2, padding=1), (2, 2, 7, 6)),
    (MaxPool2D, dict(kernel_size=(1, 2), stride=(1, 3)), (1, 2, 3, 8)),
    (MaxPool2D, dict(kernel_size=2, stride=1, dilation=(2, 1)), (1, 2, 5, 4)),
    (MaxPool3D, dict(kernel_size=2, stride=(1, 2, 2), padding=(0, 1, 1)), (1, 2, 3, 4, 5)),
    (AvgPool1D, dict(kernel_size=3, stride=2, padding=1), (2, 3, 9)),
    (AvgPool2D, dict(kernel_size=2), (2, 3, 6, 6)),
    (AvgPool2D, dict(kernel_size=3, stride=2, padding=1), (2, 2, 7, 6)),
    (AvgPool2D, dict(kernel_size=(1, 2), stride=(2, 1)), (1, 2, 5, 5)),
    (AvgPool3D, dict(kernel_size=(2, 3, 2), stride=(1, 2, 1), padding=(1, 1, 0)), (1, 2, 3, 5, 4)),
]


@pytest.mark.parametrize("cls,kwargs,shape", GRAD_CASES,
                         ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(GRAD_CASES)])
def test_pool_gradcheck(cls, kwargs, shape):
    assert_gradients_match(cls(**kwargs), distinct(shape, seed=len(shape)))


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 5), (1, 2, 2, 3, 4)])
def test_global_avg_pool_gradcheck(shape):
    assert_gradients_match(GlobalAvgPool(), np.random.default_rng(0).standard_normal(shape))


def test_global_avg_pool_values():
    x = np.arange(24.0).reshape(2, 3, 4)
    layer = GlobalAvgPool()
    np.testing.assert_array_equal(layer(x), x.mean(axis=2))
    np.testing.assert_array_equal(layer.backward(np.full((2, 3), 8.0)), np.full((2, 3, 4), 2.0))
    assert layer(np.ones((2, 3, 4, 5, 6), dtype=np.float32)).dtype == np.float32


# =================================================================================================
# PyTorch comparisons
# =================================================================================================
TORCH_CASES = [
    (1, dict(kernel_size=3, stride=2, padding=1), (2, 3, 11)),
    (1, dict(kernel_size=2, stride=3, dilation=2), (2, 3, 12)),
    (2, dict(kernel_size=2, stride=2), (2, 3, 8, 7)),
    (2, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)), (2, 3, 9, 6)),
    (2, dict(kernel_size=3, stride=1, padding=1, dilation=2), (1, 2, 7, 7)),
    (3, dict(kernel_size=2, stride=(1, 2, 3), padding=(1, 0, 1)), (2, 2, 4, 5, 6)),
]


@pytest.mark.parametrize("n,kwargs,shape", TORCH_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_matches_torch(n, kwargs, shape, dtype):
    torch = torch_or_skip()
    F = torch.nn.functional
    x = distinct(shape, seed=n).astype(dtype)
    dy = np.random.default_rng(1).standard_normal(
        MAX[n](**kwargs)(x).shape).astype(dtype)
    layer = MAX[n](**kwargs, return_indices=True)
    y, idx = layer(x)
    dx = layer.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = getattr(F, f"max_pool{n}d")(xt, return_indices=True, **kwargs)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(idx, it.numpy())
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("n,kwargs,shape", [c for c in TORCH_CASES if "dilation" not in c[1]])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avgpool_matches_torch(n, kwargs, shape, dtype):
    torch = torch_or_skip()
    F = torch.nn.functional
    rng = np.random.default_rng(n)
    x = rng.standard_normal(shape).astype(dtype)
    layer = AVG[n](**kwargs)
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(F, f"avg_pool{n}d")(xt, **kwargs)      # count_include_pad=True is the default
    yt.backward(torch.from_numpy(dy))
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 3, 5, 6), (2, 3, 3, 4, 5)])
def test_global_avg_pool_matches_torch(shape):
    torch = torch_or_skip()
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape[:2])
    layer = GlobalAvgPool()
    y = layer(x)
    dx = layer.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    n = len(shape) - 2
    yt = getattr(F, f"adaptive_avg_pool{n}d")(xt, 1).reshape(shape[:2])
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-13, atol=1e-13)


# =================================================================================================
# repr and errors
# =================================================================================================
def test_repr_shows_hyperparameters():
    assert repr(MaxPool2D(2)) == "MaxPool2D(kernel_size=2)"
    assert repr(MaxPool2D((1, 2), stride=1, padding=(0, 1), dilation=2, return_indices=True)) == \
        "MaxPool2D(kernel_size=(1, 2), stride=1, padding=(0, 1), dilation=2, return_indices=True)"
    assert repr(AvgPool3D(3, stride=2, padding=1)) == "AvgPool3D(kernel_size=3, stride=2, padding=1)"
    assert repr(AvgPool1D(4)) == "AvgPool1D(kernel_size=4)"
    assert repr(GlobalAvgPool()) == "GlobalAvgPool()"


def test_docstrings_have_math_shape_and_notes():
    for cls in (*MAX.values(), *AVG.values(), GlobalAvgPool):
        doc = cls.__doc__
        assert "Shape" in doc and "Notes" in doc and "∂L/∂x" in doc
    assert "⌊(W − K + 2P) / S⌋ + 1" in MaxPool2D.__doc__
    assert "first* maximum" in MaxPool1D.__doc__ and "count_include_pad=True" in AvgPool3D.__doc__


def test_pool_input_errors():
    layer = MaxPool2D(2)
    with pytest.raises(ValueError, match=r"MaxPool2D\(kernel_size=2\): expected x of shape "
                                         r"\(N, C, H, W\), got \(4, 5\)"):
        layer(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"AvgPool1D\(kernel_size=2\): expected x of shape "
                                         r"\(N, C, L\), got \(1, 2, 3, 4\)"):
        AvgPool1D(2)(np.ones((1, 2, 3, 4)))
    with pytest.raises(ValueError, match=r"MaxPool3D\(kernel_size=2\): expected x of shape "
                                         r"\(N, C, D, H, W\)"):
        MaxPool3D(2)(np.ones((1, 2, 3, 4)))
    with pytest.raises(TypeError, match=r"MaxPool2D\(kernel_size=2\): expected x of dtype "
                                        r"float32 or float64, got int64"):
        layer(np.ones((1, 1, 4, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="numpy array, got list"):
        AvgPool2D(2)([[[[1.0, 2.0]]]])


def test_pool_window_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"MaxPool2D\(kernel_size=3\): the kernel \(extent 3 with "
                                         r"dilation 1\) is larger than the padded input along "
                                         r"spatial axis 1 \(2 \+ 0 \+ 0 = 2\)"):
        MaxPool2D(3)(np.ones((1, 1, 5, 2)))
    with pytest.raises(ValueError, match=r"AvgPool1D\(kernel_size=4, padding=1\): the kernel .* "
                                         r"larger than the padded input"):
        AvgPool1D(4, padding=1)(np.ones((1, 1, 1)))
    with pytest.raises(ValueError, match=r"MaxPool1D\(kernel_size=2, dilation=4\).*extent 5"):
        MaxPool1D(2, dilation=4)(np.ones((1, 1, 4)))


def test_maxpool_window_entirely_in_padding():
    # taps at -1 and 2 miss the input [0, 1] entirely
    with pytest.raises(ValueError, match=r"MaxPool1D\(kernel_size=2, padding=1, dilation=3\): the "
                                         r"window at output position 0 along spatial axis 0 holds "
                                         r"only padding"):
        MaxPool1D(2, padding=1, dilation=3)(np.ones((1, 1, 2)))


def test_pool_hyperparameter_errors():
    with pytest.raises(ValueError, match=r"MaxPool2D\(kernel_size=2, padding=2\): padding must be "
                                         r"at most half the kernel size per axis \(P <= ⌊K/2⌋ = 1\)"
                                         r", got padding 2"):
        MaxPool2D(2, padding=2)
    with pytest.raises(ValueError, match=r"AvgPool2D\(kernel_size=\(1, 3\), padding=1\): padding "
                                         r"must be at most half.*= \(0, 1\)\), got padding 1"):
        AvgPool2D((1, 3), padding=1)
    with pytest.raises(ValueError, match="MaxPool2D: kernel_size must be an integer >= 1 or a "
                                         "tuple of 2 such integers, got 0"):
        MaxPool2D(0)
    with pytest.raises(ValueError, match=r"AvgPool3D: kernel_size must be .* tuple of 3 .* got "
                                         r"\(2, 2\)"):
        AvgPool3D((2, 2))
    with pytest.raises(ValueError, match="MaxPool1D: stride must be an integer >= 1.*got -1"):
        MaxPool1D(2, stride=-1)
    with pytest.raises(ValueError, match="AvgPool2D: padding must be an integer >= 0.*got -1"):
        AvgPool2D(2, padding=-1)
    with pytest.raises(ValueError, match="MaxPool2D: padding must be an integer >= 0 or a tuple "
                                         "of 2 such integers, got 'same'"):
        MaxPool2D(2, padding="same")
    with pytest.raises(ValueError, match="MaxPool3D: dilation must be an integer >= 1.*got 0"):
        MaxPool3D(2, dilation=0)
    with pytest.raises(ValueError, match="MaxPool2D: kernel_size must be an integer.*got 2.5"):
        MaxPool2D(2.5)


@pytest.mark.parametrize("layer,x", [
    (MaxPool2D(2), np.ones((1, 2, 4, 4))),
    (AvgPool1D(2), np.ones((1, 2, 4))),
    (GlobalAvgPool(), np.ones((1, 2, 4))),
], ids=["max", "avg", "global"])
def test_backward_errors(layer, x):
    with pytest.raises(RuntimeError, match=rf"{type(layer).__name__}\(.*\): backward called "
                                           r"before forward"):
        layer.backward(np.ones((1, 2, 2)))
    y = layer(x)
    bad = y.shape[:-1] + (y.shape[-1] + 1,)
    with pytest.raises(ValueError, match=re.escape(f"expected dy of shape {y.shape} (the output of "
                                                   f"forward), got {bad}")):
        layer.backward(np.ones(bad))
    with pytest.raises(TypeError, match="expected dy to be a numpy array, got list"):
        layer.backward(y.tolist())


def test_global_avg_pool_errors():
    layer = GlobalAvgPool()
    with pytest.raises(ValueError, match=r"GlobalAvgPool\(\): expected x of shape \(N, C, "
                                         r"\*spatial\) with at least one spatial axis, got \(4, 5\)"):
        layer(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"GlobalAvgPool\(\): expected a non-empty spatial "
                                         r"extent, got shape \(1, 2, 0\)"):
        layer(np.ones((1, 2, 0)))
    with pytest.raises(TypeError, match=r"GlobalAvgPool\(\): expected x of dtype float32 or "
                                        r"float64, got int64"):
        layer(np.ones((1, 2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="numpy array, got list"):
        layer([[[1.0]]])


@pytest.mark.parametrize("cls", [AvgPool1D, AvgPool2D, AvgPool3D])
def test_avgpool_says_it_has_no_dilation(cls):
    with pytest.raises(ValueError, match=cls.__name__ + ": dilation is not supported by average "
                                         "pooling .* kernel_size, stride and padding"):
        cls(2, dilation=2)
    assert cls(2, dilation=1).kernel_size == (2,) * cls.ndim
