import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import layerkit as lk
from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match

geometry = st.fixed_dictionaries({
    "kernel_size": st.tuples(st.integers(1, 3), st.integers(1, 3)),
    "stride": st.tuples(st.integers(1, 3), st.integers(1, 3)),
    "padding": st.tuples(st.integers(0, 1), st.integers(0, 1)),
    "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2)),
})


def _pair(g, seed, dtype=np.float64):
    """A ConvTranspose2D and the Conv2D it transposes, sharing one kernel (C_in ↔ C_out swapped)."""
    convt = lk.ConvTranspose2D(3, 2, bias=False, dtype=dtype, seed=seed, **g)
    conv = lk.Conv2D(2, 3, bias=False, dtype=dtype, **g)
    conv.params["weight"][...] = convt.params["weight"]        # (3, 2, k): conv maps 2 → 3
    return convt, conv


@given(g=geometry, h=st.integers(1, 5), w=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_adjoint_of_convolution(g, h, w, seed):
    """⟨conv(x), y⟩ = ⟨x, convT(y)⟩: the transposed convolution is the convolution's adjoint."""
    convt, conv = _pair(g, seed)
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((2, 3, h, w))
    assume(min(convt.output_shape((h, w))) >= 1)
    out = convt(y)
    x = rng.standard_normal(out.shape[:1] + (2,) + out.shape[2:])
    conv_x = conv(x)
    assert conv_x.shape == y.shape
    np.testing.assert_allclose(np.sum(conv_x * y), np.sum(x * out), rtol=1e-10, atol=1e-10)
    # and its backward is that convolution's forward
    np.testing.assert_allclose(convt.backward(x), conv_x, rtol=1e-12, atol=1e-12)


def test_hand_worked_stride_2():
    # one input pixel of value 2 scatters 2·kernel at stride 2; overlaps add up
    layer = lk.ConvTranspose2D(1, 1, 2, stride=2, bias=False, dtype=np.float64)
    layer.params["weight"][0, 0] = [[1.0, 2.0], [3.0, 4.0]]
    y = layer(np.array([[[[2.0, 1.0]]]]))
    np.testing.assert_array_equal(y[0, 0], [[2.0, 4.0, 1.0, 2.0], [6.0, 8.0, 3.0, 4.0]])
    overlap = lk.ConvTranspose2D(1, 1, (1, 3), stride=(1, 2), bias=False, dtype=np.float64)
    overlap.params["weight"][0, 0] = [[1.0, 1.0, 1.0]]
    np.testing.assert_array_equal(overlap(np.ones((1, 1, 1, 2)))[0, 0], [[1.0, 1.0, 2.0, 1.0, 1.0]])


@given(g=geometry, op=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_gradcheck(g, op, seed):
    op = tuple(min(op, s - 1) for s in g["stride"])
    layer = lk.ConvTranspose2D(2, 3, output_padding=op, dtype=np.float64, seed=seed, **g)
    layer.params["bias"][...] = [0.1, -0.2, 0.3]
    assert_gradients_match(layer, np.random.default_rng(seed).standard_normal((2, 2, 3, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [{}, {"stride": 2, "padding": 1, "output_padding": 1},
                                {"stride": (2, 3), "padding": (0, 1), "dilation": (2, 1)}])
def test_matches_torch(dtype, kw):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    layer = lk.ConvTranspose2D(3, 2, (3, 2), dtype=dtype, seed=1, **kw)
    layer.params["bias"][...] = rng.standard_normal(2)
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.params["weight"], requires_grad=True)
    bt = torch.tensor(layer.params["bias"], requires_grad=True)
    yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, **kw)
    y = layer(x)
    assert y.dtype == dtype and y.shape == tuple(yt.shape)
    dy = rng.standard_normal(y.shape).astype(dtype)
    yt.backward(torch.from_numpy(dy))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.grads["weight"], wt.grad.numpy(), rtol=tol, atol=10 * tol)
    np.testing.assert_allclose(layer.grads["bias"], bt.grad.numpy(), rtol=tol, atol=10 * tol)


def test_errors():
    with pytest.raises(ValueError, match=r"output_padding must be smaller than the stride 2, got 2"):
        lk.ConvTranspose2D(1, 1, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="padding must be an int or a tuple of 2 ints, got 'same'"):
        lk.ConvTranspose2D(1, 1, 3, padding="same")
    layer = lk.ConvTranspose2D(3, 2, 3)
    with pytest.raises(ValueError, match=r"ConvTranspose2D\(3, 2, kernel_size=3\): expected x of shape \(N, 3, H, W\), got \(1, 2, 4, 4\)"):
        layer(np.ones((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="gives an empty output"):
        lk.ConvTranspose2D(1, 1, 1, padding=1)(np.ones((1, 1, 1, 1), np.float32))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones((1, 2, 6, 6), np.float32))
    layer(np.ones((1, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected dy of shape \(1, 2, 6, 6\)"):
        layer.backward(np.ones((1, 2, 5, 5), np.float32))
