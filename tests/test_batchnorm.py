import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from layerkit.layers.containers import Sequential
from layerkit.layers.linear import Linear
from layerkit.layers.normalization import BatchNorm1D, BatchNorm2D
from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match


def bn_reference(x, gamma, beta, eps, mean=None, var=None):
    """Plain per-channel loops; batch statistics (biased variance) unless mean/var are given."""
    c = x.shape[1]
    y = np.empty(x.shape, dtype=np.float64)
    for k in range(c):
        vals = x[:, k].astype(np.float64).ravel()
        if mean is None:
            mu = sum(vals) / len(vals)
            v = sum((a - mu) ** 2 for a in vals) / len(vals)
        else:
            mu, v = float(mean[k]), float(var[k])
        y[:, k] = gamma[k] * (x[:, k] - mu) / np.sqrt(v + eps) + beta[k]
    return y


def spread(rng, shape):
    """Values with a guaranteed spread inside every channel (no near-zero batch variance)."""
    ramp = np.linspace(-1.0, 1.0, shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
    return 0.5 * rng.standard_normal(shape) + ramp


CASES = [(BatchNorm1D, (6, 3)), (BatchNorm1D, (4, 3, 5)), (BatchNorm2D, (3, 3, 4, 2))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,shape", CASES)
def test_forward_train_and_eval_match_loops(cls, shape, dtype):
    rng = np.random.default_rng(0)
    layer = cls(3, eps=1e-3, dtype=dtype)
    layer.params["weight"][...] = [0.5, 2.0, -1.0]
    layer.params["bias"][...] = [0.1, -0.3, 1.0]
    x = (2 * rng.standard_normal(shape) + 1).astype(dtype)
    y = layer(x)
    assert y.shape == shape and y.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    expected = bn_reference(x, layer.params["weight"], layer.params["bias"], 1e-3)
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
    layer.eval()
    layer.running_mean[...] = [0.5, -1.0, 2.0]
    layer.running_var[...] = [0.25, 4.0, 1.5]
    ye = layer(x)
    assert ye.dtype == dtype
    expected = bn_reference(x, layer.params["weight"], layer.params["bias"], 1e-3,
                            layer.running_mean, layer.running_var)
    np.testing.assert_allclose(ye, expected, rtol=tol, atol=tol)


def test_train_output_is_normalised_and_running_stats_update():
    rng = np.random.default_rng(1)
    layer = BatchNorm1D(4, momentum=0.5, affine=False, dtype=np.float64)
    x = 3 * rng.standard_normal((50, 4)) + 7
    y = layer(x)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(0), 1, rtol=1e-5)
    np.testing.assert_allclose(layer.running_mean, 0.5 * x.mean(0))
    np.testing.assert_allclose(layer.running_var, 0.5 + 0.5 * x.var(0, ddof=1))
    assert layer.params == {} and layer.grads == {}
    before = layer.running_mean.copy()
    layer.eval()(x)                                     # eval does not touch running stats
    np.testing.assert_array_equal(layer.running_mean, before)


def test_mixed_dtypes_and_astype():
    layer = BatchNorm2D(2)                              # float32 params
    x = np.random.default_rng(2).standard_normal((2, 2, 3, 3))
    y = layer(x)
    assert y.dtype == np.float64
    assert layer.backward(np.ones_like(x)).dtype == np.float64
    assert layer.grads["weight"].dtype == np.float32
    assert layer.running_mean.dtype == np.float32
    layer.astype(np.float64)
    assert layer.params["weight"].dtype == np.float64
    assert layer.running_mean.dtype == np.float64 and layer.running_var.dtype == np.float64
    assert layer(x.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("cls,shape,tcls", [(BatchNorm1D, (5, 3), "BatchNorm1d"),
                                            (BatchNorm1D, (4, 3, 6), "BatchNorm1d"),
                                            (BatchNorm2D, (3, 3, 4, 5), "BatchNorm2d")])
def test_matches_torch_train_and_running_stats(cls, shape, tcls):
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    layer = cls(3, momentum=0.2, dtype=np.float64)
    layer.params["weight"][...] = rng.standard_normal(3)
    layer.params["bias"][...] = rng.standard_normal(3)
    ref = getattr(torch.nn, tcls)(3, momentum=0.2).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(layer.params["weight"]))
        ref.bias.copy_(torch.from_numpy(layer.params["bias"]))
    for step in range(4):
        x = 2 * rng.standard_normal(shape) + step
        dy = rng.standard_normal(shape)
        layer.zero_grad()
        ref.zero_grad()
        xt = torch.tensor(x, requires_grad=True)
        yt = ref(xt)
        yt.backward(torch.from_numpy(dy))
        np.testing.assert_allclose(layer(x), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer.grads["weight"], ref.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(layer.grads["bias"], ref.bias.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(layer.running_mean, ref.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, ref.running_var.numpy(), rtol=1e-12)
    layer.eval(), ref.eval()
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(layer(x), ref(torch.from_numpy(x)).detach().numpy(), rtol=1e-10,
                               atol=1e-12)


# At least 3 values per channel: with M = 2, x̂ = ±1 whatever x is, so ∂L/∂x is O(ε) and the
# finite difference measures rounding noise, not the gradient.
shapes = st.one_of(
    st.tuples(st.just(BatchNorm1D), st.tuples(st.integers(3, 5), st.integers(1, 3))),
    st.tuples(st.just(BatchNorm1D), st.tuples(st.integers(2, 3), st.integers(1, 3), st.integers(2, 3))),
    st.tuples(st.just(BatchNorm2D),
              st.tuples(st.integers(2, 3), st.integers(1, 2), st.integers(1, 3), st.integers(2, 3))),
)


@settings(max_examples=15)
@given(case=shapes, affine=st.booleans(), training=st.booleans(), seed=st.integers(0, 2**16))
def test_gradcheck(case, affine, training, seed):
    cls, shape = case
    rng = np.random.default_rng(seed)
    c = shape[1]
    layer = cls(c, affine=affine, dtype=np.float64)
    if affine:
        layer.params["weight"][...] = rng.uniform(0.5, 2.0, c) * rng.choice([-1, 1], c)
        layer.params["bias"][...] = rng.standard_normal(c)
    if not training:
        layer.running_mean[...] = rng.standard_normal(c)
        layer.running_var[...] = rng.uniform(0.5, 2.0, c)
        layer.eval()
    x = spread(rng, shape) if training else rng.standard_normal(shape)
    report = assert_gradients_match(layer, x)
    assert {t.name for t in report.tensors} == ({"x", "weight", "bias"} if affine else {"x"})


def test_gradcheck_inside_sequential():
    rng = np.random.default_rng(4)
    # No bias before the batch norm: the batch mean removes it, its gradient is exactly 0.
    net = Sequential(Linear(3, 4, bias=False, dtype=np.float64, seed=0),
                     BatchNorm1D(4, dtype=np.float64), Linear(4, 2, dtype=np.float64, seed=1))
    assert list(net.params) == ["0.weight", "1.weight", "1.bias", "2.weight", "2.bias"]
    assert_gradients_match(net, spread(rng, (5, 3)))


def test_bias_before_batchnorm_gets_no_gradient():
    rng = np.random.default_rng(5)
    lin = Linear(3, 4, dtype=np.float64, seed=0)
    net = Sequential(lin, BatchNorm1D(4, dtype=np.float64))
    net.backward(net(spread(rng, (6, 3))) * 0 + rng.standard_normal((6, 4)))
    np.testing.assert_allclose(lin.grads["bias"], 0, atol=1e-12)
    assert np.abs(lin.grads["weight"]).max() > 1e-3


def test_repr_and_docstrings():
    assert repr(BatchNorm2D(16)) == "BatchNorm2D(16)"
    assert repr(BatchNorm1D(3, eps=1e-3, momentum=0.2, affine=False)) == \
        "BatchNorm1D(3, eps=0.001, momentum=0.2, affine=False)"
    for cls in (BatchNorm1D, BatchNorm2D):
        assert "Notes" in cls.__doc__ and "mean(δ ⊙ x̂)" in cls.__doc__
    assert "(N, C, H, W)" in BatchNorm2D.__doc__ and "(N, C, L)" in BatchNorm1D.__doc__


def test_errors():
    bn2 = BatchNorm2D(16)
    with pytest.raises(ValueError, match=r"BatchNorm2D\(16\): expected x of shape \(N, 16, H, W\), "
                                         r"got \(2, 8, 4, 4\)"):
        bn2(np.ones((2, 8, 4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 16, H, W\), got \(2, 16, 4\)"):
        bn2(np.ones((2, 16, 4), dtype=np.float32))
    bn1 = BatchNorm1D(3)
    with pytest.raises(ValueError, match=r"BatchNorm1D\(3\): expected x of shape \(N, 3\) or "
                                         r"\(N, 3, L\), got \(4, 2\)"):
        bn1(np.ones((4, 2), dtype=np.float32))
    with pytest.raises(TypeError, match=r"BatchNorm1D\(3\): expected x of dtype float32 or float64"):
        bn1(np.ones((4, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="numpy array, got list"):
        bn1([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match=r"BatchNorm1D\(3\): expected more than 1 value per channel "
                                         r"when training, got x of shape \(1, 3\)"):
        bn1(np.ones((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm2D(2)(np.ones((1, 2, 1, 1)))
    assert BatchNorm1D(3).eval()(np.ones((1, 3))).shape == (1, 3)   # fine in eval mode
    assert BatchNorm1D(3)(np.ones((1, 3, 2))).shape == (1, 3, 2)    # M = 2 values per channel
    with pytest.raises(RuntimeError, match=r"BatchNorm1D\(3\): backward called before forward"):
        BatchNorm1D(3).backward(np.ones((2, 3)))
    bn1(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"expected dy of shape \(4, 3\).*got \(4, 2\)"):
        bn1.backward(np.ones((4, 2)))
    with pytest.raises(ValueError, match="num_features must be a positive integer, got 0"):
        BatchNorm1D(0)
    with pytest.raises(ValueError, match=r"eps must be in \(0.0, inf\), got 0"):
        BatchNorm2D(3, eps=0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0.0, 1.0\], got 1.5"):
        BatchNorm2D(3, momentum=1.5)
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int32"):
        BatchNorm2D(3, dtype=np.int32)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        BatchNorm2D(3).astype(np.int16)
