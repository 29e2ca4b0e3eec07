import numpy as np
import pytest
from hypothesis import given, strategies as st

import layerkit as lk
from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match


def test_unpool_puts_maxima_back_hand_worked():
    x = np.array([[[[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]]], dtype=np.float64)
    y, idx = lk.MaxPool2D(2, return_indices=True)(x)
    np.testing.assert_array_equal(idx[0, 0], [[5, 7], [8, 15]])      # flat positions of 6, 8, 3, 4
    up = lk.MaxUnpool2D(2)(y, idx)
    np.testing.assert_array_equal(up[0, 0], [[0, 0, 0, 0], [0, 6, 0, 8], [3, 0, 0, 0], [0, 0, 0, 4]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unpool_matches_torch(dtype):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6).astype(dtype)
    y, idx = lk.MaxPool2D(2, stride=2, return_indices=True)(x)
    unpool = lk.MaxUnpool2D(2)
    ours = unpool(y, idx, output_size=(7, 6))
    theirs = torch.nn.functional.max_unpool2d(torch.from_numpy(y), torch.from_numpy(idx), 2,
                                              output_size=(7, 6))
    assert ours.dtype == dtype
    np.testing.assert_array_equal(ours, theirs.numpy())
    dy = rng.standard_normal(ours.shape).astype(dtype)
    yt = torch.from_numpy(y).requires_grad_(True)
    torch.nn.functional.max_unpool2d(yt, torch.from_numpy(idx), 2, output_size=(7, 6)).backward(
        torch.from_numpy(dy))
    np.testing.assert_array_equal(unpool.backward(dy), yt.grad.numpy())


@given(seed=st.integers(0, 2**16), stride=st.integers(1, 2))
def test_unpool_gradcheck_and_overlap_adjoint(seed, stride):
    rng = np.random.default_rng(seed)
    x = rng.permutation(2 * 2 * 5 * 5).reshape(2, 2, 5, 5) * 0.1
    y, idx = lk.MaxPool2D(2, stride=stride, return_indices=True)(x)
    layer = lk.MaxUnpool2D(2, stride=stride)
    assert_gradients_match(layer, (rng.standard_normal(y.shape), idx), forward_kwargs={"output_size": (5, 5)})
    # adjointness even where overlapping windows share an argmax: <unpool(v), w> = <v, unpool.T(w)>
    v, w = rng.standard_normal(y.shape), rng.standard_normal((2, 2, 5, 5))
    up = layer(v, idx, output_size=(5, 5))
    # rounding of a sum scales with the sum of |terms|, not with the (possibly cancelling) sum
    scale = np.sum(np.abs(up * w))
    np.testing.assert_allclose(np.sum(up * w), np.sum(v * layer.backward(w)), rtol=0,
                               atol=1e-12 * scale)


def test_unpool_errors():
    layer = lk.MaxUnpool2D(2)
    x = np.ones((1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"MaxUnpool2D\(kernel_size=2\): indices must lie in \[0, 16\)"):
        layer(x, np.full((1, 1, 2, 2), 16))
    with pytest.raises(ValueError, match=r"expected indices of shape \(1, 1, 2, 2\), got \(1, 1, 2\)"):
        layer(x, np.zeros((1, 1, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="expected indices of an integer dtype, got float64"):
        layer(x, np.zeros((1, 1, 2, 2)))


def _maxout_loop(x, k):
    n, c = x.shape[:2]
    out = np.empty((n, c // k) + x.shape[2:])
    for i in range(n):
        for g in range(c // k):
            out[i, g] = np.max(np.stack([x[i, g * k + j] for j in range(k)]), axis=0)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 6), (2, 6, 3, 4)])
def test_channel_max_pool_forward(dtype, shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    y = lk.ChannelMaxPool(3)(x)
    assert y.dtype == dtype and y.shape == (2, 2) + shape[2:]
    np.testing.assert_array_equal(y, _maxout_loop(x, 3))


@given(seed=st.integers(0, 2**16), k=st.integers(1, 3))
def test_channel_max_pool_gradcheck(seed, k):
    x = np.random.default_rng(seed).permutation(2 * 6 * 3).reshape(2, 6, 3) * 0.01
    assert_gradients_match(lk.ChannelMaxPool(k), x)


def test_channel_max_pool_tie_goes_to_first_and_errors():
    layer = lk.ChannelMaxPool(2)
    layer(np.ones((1, 4)))
    np.testing.assert_array_equal(layer.backward(np.array([[1.0, 2.0]])), [[1.0, 0.0, 2.0, 0.0]])
    with pytest.raises(ValueError, match=r"ChannelMaxPool\(2\): expected x of shape \(N, C, \.\.\.\) with C divisible by 2, got \(1, 3\)"):
        layer(np.ones((1, 3)))
    with pytest.raises(ValueError, match="pool_size must be a positive integer, got 0"):
        lk.ChannelMaxPool(0)


def test_channel_max_pool_matches_torch_max_over_groups():
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    x = rng.permutation(2 * 6 * 4 * 3).reshape(2, 6, 4, 3).astype(np.float64)
    dy = rng.standard_normal((2, 3, 4, 3))
    xt = torch.tensor(x, requires_grad=True)
    yt = xt.reshape(2, 3, 2, 4, 3).amax(dim=2)
    yt.backward(torch.from_numpy(dy))
    layer = lk.ChannelMaxPool(2)
    np.testing.assert_array_equal(layer(x), yt.detach().numpy())
    np.testing.assert_array_equal(layer.backward(dy), xt.grad.numpy())


@pytest.mark.parametrize("size, shown", [("44", "'44'"), ((4.7, 4.2), r"\(4.7, 4.2\)"),
                                         ((-4, 4), r"\(-4, 4\)"), ((4,), r"\(4,\)"),
                                         ((True, 4), r"\(True, 4\)"), (4, "4")])
def test_unpool_output_size_must_be_positive_integers(size, shown):
    y, idx = lk.MaxPool2D(2, return_indices=True)(np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"MaxUnpool2D\(kernel_size=2\): output_size must be a "
                                         r"tuple of positive integers \(H_out, W_out\), got " + shown):
        lk.MaxUnpool2D(2)(y, idx, output_size=size)


def test_unpool_accepts_unsigned_and_numpy_integer_sizes():
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    y, idx = lk.MaxPool2D(2, return_indices=True)(x)
    ref = lk.MaxUnpool2D(2)(y, idx, output_size=(2, 2))
    got = lk.MaxUnpool2D(2)(y, idx.astype(np.uint64), output_size=(np.int64(2), np.uint8(2)))
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, [[[[0, 0], [0, 3]]]])


def test_unpool_huge_output_names_the_layer_and_size():
    y, idx = lk.MaxPool2D(2, return_indices=True)(np.ones((1, 1, 2, 2)))
    with pytest.raises(MemoryError, match=r"MaxUnpool2D\(kernel_size=2\): the output of shape "
                                          r"\(1, 1, 1000000, 1000000\) .* would need"):
        lk.MaxUnpool2D(2)(y, idx, output_size=(10**6, 10**6))


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 0, 4, 4)])
def test_unpool_empty_batch_or_channels(shape):
    y, idx = lk.MaxPool2D(2, return_indices=True)(np.zeros(shape))
    unpool = lk.MaxUnpool2D(2)
    z = unpool(y, idx)
    assert z.shape == shape
    assert unpool.backward(np.zeros(shape)).shape == y.shape


def test_unpool_backward_validates_dy_and_keeps_its_own_indices():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y, idx = lk.MaxPool2D(2, return_indices=True)(x)
    unpool = lk.MaxUnpool2D(2)
    z = unpool(y, idx)
    idx[...] = 0                                   # the caller reuses its buffer
    dy = np.arange(16.0).reshape(z.shape)
    np.testing.assert_array_equal(unpool.backward(dy), [[[[5, 7], [13, 15]]]])
    for bad in (dy.astype(complex), dy[..., :2], dy.tolist()):
        with pytest.raises((TypeError, ValueError), match=r"MaxUnpool2D\(kernel_size=2\): expected dy"):
            unpool.backward(bad)
