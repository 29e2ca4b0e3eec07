"""MinibatchStd: a hand-worked example (PyTorch has no such layer), a plain-loop reference,
finite differences, the empty batch and the errors."""

import numpy as np
import pytest

import layerkit as lk
from layerkit.testing import assert_gradients_match


def ref_minibatch_std(x, eps):
    """The definition, one feature at a time, in float64."""
    x = np.asarray(x, np.float64)
    n, flat = x.shape[0], x.reshape(x.shape[0], -1)
    stds = []
    for i in range(flat.shape[1]):
        mu = sum(flat[k, i] for k in range(n)) / n
        stds.append(np.sqrt(sum((flat[k, i] - mu) ** 2 for k in range(n)) / n + eps))
    sigma = sum(stds) / len(stds)
    return np.concatenate([x, np.full((n, 1) + x.shape[2:], sigma)], axis=1)


def test_hand_worked_example():
    """x = [[1, 0], [3, 4]] (N = 2, C = 2): μ = (2, 2), s = (1, 2), σ = 1.5. With δ = 1 on the
    σ channel only, g = 2 and ∂L/∂x_{n,i} = 2 (x_{n,i} − μ_i) / (2·2·s_i) = ∓0.5 everywhere."""
    layer = lk.MinibatchStd(eps=1e-12)
    x = np.array([[1.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(layer(x), [[1, 0, 1.5], [3, 4, 1.5]], rtol=1e-12)
    dy = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(layer.backward(dy), [[-0.5, -0.5], [0.5, 0.5]], rtol=1e-10)
    dy = np.array([[2.0, 3.0, 0.0], [5.0, 7.0, 0.0]])      # the copied channels pass through
    np.testing.assert_array_equal(layer.backward(dy), dy[:, :2])


SHAPES = [(2, 3), (4, 3, 5), (3, 2, 4, 4), (5, 1, 2, 3, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_plain_loop(shape, dtype):
    x = (2 * np.random.default_rng(1).standard_normal(shape) + 1).astype(dtype)
    y = lk.MinibatchStd()(x)
    assert y.dtype == dtype and y.shape == (shape[0], shape[1] + 1) + shape[2:]
    np.testing.assert_allclose(y, ref_minibatch_std(x, 1e-8),
                               rtol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck(shape):
    assert_gradients_match(lk.MinibatchStd(), np.random.default_rng(2).standard_normal(shape))


def test_gradcheck_with_a_constant_feature():
    """A feature equal in every sample: s_i = √ε and its term (x − μ) = 0 (finite)."""
    x = np.random.default_rng(3).standard_normal((3, 2, 2))
    x[:, 0, 1] = 0.7
    assert_gradients_match(lk.MinibatchStd(eps=1e-2), x)


def test_one_sample_and_empty_batch():
    layer = lk.MinibatchStd(eps=0.25)
    y = layer(np.array([[3.0, -1.0]]))             # s_i = √ε = 0.5, x − μ = 0
    np.testing.assert_array_equal(y, [[3.0, -1.0, 0.5]])
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3))), [[1.0, 1.0]])
    y = layer(np.zeros((0, 2, 3), np.float32))
    assert y.shape == (0, 3, 3) and y.dtype == np.float32
    assert layer.backward(np.zeros((0, 3, 3), np.float32)).shape == (0, 2, 3)


def test_float32_backward_keeps_dtype():
    layer = lk.MinibatchStd()
    x = np.random.default_rng(4).standard_normal((4, 3, 2, 2)).astype(np.float32)
    y = layer(x)
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == np.float32 and dx.shape == x.shape


def test_repr_and_errors():
    assert repr(lk.MinibatchStd()) == "MinibatchStd()"
    assert repr(lk.MinibatchStd(eps=1e-4)) == "MinibatchStd(eps=0.0001)"
    with pytest.raises(ValueError, match=r"^MinibatchStd: eps must be in \(0.0, inf\), got 0"):
        lk.MinibatchStd(eps=0.0)
    layer = lk.MinibatchStd()
    with pytest.raises(ValueError, match=r"^MinibatchStd\(\): expected x of shape \(N, C, ...\), "
                                         r"got \(3,\)"):
        layer(np.zeros(3))
    with pytest.raises(RuntimeError, match="MinibatchStd.*backward called before forward"):
        lk.MinibatchStd().backward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"^MinibatchStd\(\): expected at least one feature"):
        layer(np.zeros((2, 0, 3)))
    layer(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"MinibatchStd.*dy"):
        layer.backward(np.zeros((2, 2)))
