import numpy as np
import pytest
from hypothesis import given, strategies as st

import layerkit as lk
import reference as ref
from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
def test_linear_forward_matches_loop(dtype, shape):
    layer = lk.Linear(4, 3, dtype=dtype, seed=0)
    layer.params["bias"][...] = [0.5, -1.0, 2.0]
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    y = layer(x)
    assert y.shape == shape[:-1] + (3,) and y.dtype == dtype
    expected = ref.linear(x, layer.params["weight"], layer.params["bias"])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


def test_linear_hand_worked_example():
    layer = lk.Linear(2, 2, dtype=np.float64)
    layer.params["weight"][...] = [[1.0, 2.0], [3.0, -1.0]]
    layer.params["bias"][...] = [0.5, 0.0]
    y = layer(np.array([[1.0, 1.0]]))
    np.testing.assert_array_equal(y, [[3.5, 2.0]])
    dx = layer.backward(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(dx, [[7.0, 0.0]])             # δ W
    np.testing.assert_array_equal(layer.grads["weight"], [[1.0, 1.0], [2.0, 2.0]])  # δᵀ x
    np.testing.assert_array_equal(layer.grads["bias"], [1.0, 2.0])


@given(n=st.integers(1, 4), t=st.one_of(st.none(), st.integers(1, 3)), d=st.integers(1, 5),
       o=st.integers(1, 5), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_gradcheck(n, t, d, o, bias, seed):
    rng = np.random.default_rng(seed)
    shape = (n, d) if t is None else (n, t, d)
    assert_gradients_match(lk.Linear(d, o, bias=bias, dtype=np.float64, seed=seed), rng.standard_normal(shape))


def test_linear_gradients_accumulate_until_zero_grad():
    layer = lk.Linear(3, 2, dtype=np.float64, seed=0)
    x, dy = np.ones((4, 3)), np.ones((4, 2))
    layer(x); layer.backward(dy)
    once = layer.grads["weight"].copy()
    layer(x); layer.backward(dy)
    np.testing.assert_allclose(layer.grads["weight"], 2 * once)
    layer.zero_grad()
    assert not layer.grads["weight"].any() and not layer.grads["bias"].any()


@pytest.mark.parametrize("pdtype,xdtype", [(np.float32, np.float64), (np.float64, np.float32)])
def test_linear_output_dtype_follows_input(pdtype, xdtype):
    layer = lk.Linear(3, 2, dtype=pdtype)
    x = np.ones((2, 3), dtype=xdtype)
    y = layer(x)
    assert y.dtype == xdtype
    assert layer.backward(np.ones((2, 2), dtype=xdtype)).dtype == xdtype
    assert layer.grads["weight"].dtype == pdtype


def test_linear_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    layer = lk.Linear(6, 4, dtype=np.float64, seed=3)
    layer.params["bias"][...] = rng.standard_normal(4)
    ref_layer = torch.nn.Linear(6, 4).double()
    with torch.no_grad():
        ref_layer.weight.copy_(torch.from_numpy(layer.params["weight"]))
        ref_layer.bias.copy_(torch.from_numpy(layer.params["bias"]))
    x = rng.standard_normal((2, 5, 6))
    dy = rng.standard_normal((2, 5, 4))
    xt = torch.tensor(x, requires_grad=True)
    yt = ref_layer(xt)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(layer(x), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["weight"], ref_layer.weight.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.grads["bias"], ref_layer.bias.grad.numpy(), rtol=1e-12)


def test_linear_default_init_is_glorot_and_seeded():
    a = lk.Linear(300, 200, seed=7).params["weight"]
    b = lk.Linear(300, 200, seed=7).params["weight"]
    np.testing.assert_array_equal(a, b)
    bound = np.sqrt(6 / 500)
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.95 * bound
    custom = lk.Linear(3, 2, weight_init=lk.init.zeros)
    assert not custom.params["weight"].any()


def test_linear_errors():
    layer = lk.Linear(3, 4)
    with pytest.raises(ValueError, match=r"Linear\(3, 4\): expected x of shape \(\.\.\., N, 3\), got \(2, 5\)"):
        layer(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(TypeError, match=r"Linear\(3, 4\): expected x of dtype float32 or float64, got int64"):
        layer(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="numpy array, got list"):
        layer([[1.0, 2.0, 3.0]])
    with pytest.raises(RuntimeError, match=r"Linear\(3, 4\): backward called before forward"):
        layer.backward(np.ones((2, 4), dtype=np.float32))
    layer(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected dy of shape \(2, 4\).*got \(2, 3\)"):
        layer.backward(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="out_features must be a positive integer, got 0"):
        lk.Linear(3, 0)
    with pytest.raises(ValueError, match="in_features must be a positive integer, got 2.5"):
        lk.Linear(2.5, 3)
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int32"):
        lk.Linear(2, 3, dtype=np.int32)


def test_flatten_roundtrip_and_gradcheck():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    f = lk.Flatten()
    y = f(x)
    assert y.shape == (2, 60)
    np.testing.assert_array_equal(y[1], x[1].ravel())
    np.testing.assert_array_equal(f.backward(y), x)
    assert lk.Flatten(start_dim=2)(x).shape == (2, 3, 20)
    assert_gradients_match(lk.Flatten(), x)


def test_flatten_errors():
    with pytest.raises(ValueError, match=r"Flatten\(\): expected x with at least 2 axes, got shape \(3,\)"):
        lk.Flatten()(np.ones(3))
    with pytest.raises(ValueError, match="start_dim must be a non-negative integer"):
        lk.Flatten(start_dim=-1)
