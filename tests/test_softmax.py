import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import layerkit as lk
import reference as ref
from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_forward_matches_loop(dtype, axis):
    x = (2 * np.random.default_rng(0).standard_normal((3, 4, 5))).astype(dtype)
    y = lk.Softmax(axis=axis)(x)
    assert y.shape == x.shape and y.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, ref.along_axis(ref.softmax_rows, x, axis), rtol=tol, atol=tol)
    logy = lk.LogSoftmax(axis=axis)(x)
    assert logy.dtype == dtype
    np.testing.assert_allclose(logy, np.log(ref.along_axis(ref.softmax_rows, x, axis)),
                               rtol=10 * tol, atol=10 * tol)


def test_softmax_hand_worked_example():
    # softmax(0, ln 2, ln 5) = (1, 2, 5) / 8
    y = lk.Softmax()(np.log(np.array([[1.0, 2.0, 5.0]])))
    np.testing.assert_allclose(y, [[0.125, 0.25, 0.625]], rtol=1e-15)


def test_softmax_jacobian_element_by_element():
    y = lk.Softmax()(np.array([0.3, -1.2, 2.0, 0.1]))
    J = lk.softmax_jacobian(y)
    assert J.shape == (4, 4)
    for i in range(4):
        for j in range(4):
            expected = y[i] * (1.0 - y[j]) if i == j else -y[i] * y[j]
            assert J[i, j] == pytest.approx(expected, rel=1e-15, abs=1e-17)
    batch = lk.softmax_jacobian(np.stack([y, y[::-1]]))
    assert batch.shape == (2, 4, 4)
    np.testing.assert_allclose(batch[1], lk.softmax_jacobian(y[::-1]), rtol=1e-15)


def test_softmax_backward_is_jacobian_vector_product():
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    layer = lk.Softmax()
    y = layer(x)
    dx = layer.backward(dy)
    for n in range(3):
        np.testing.assert_allclose(dx[n], lk.softmax_jacobian(y[n]).T @ dy[n], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cls", [lk.Softmax, lk.LogSoftmax])
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       axis_pick=st.integers(0, 10), seed=st.integers(0, 2**16))
def test_gradcheck(cls, shape, axis_pick, seed):
    axis = axis_pick % len(shape) - (len(shape) if axis_pick % 2 else 0)
    x = 2 * np.random.default_rng(seed).standard_normal(shape)
    if shape[axis] == 1:
        # (log) softmax of a single element is constant: every gradient is zero (a vacuous check)
        report = lk.gradcheck(cls(axis=axis), x)
        assert not report.passed and {t.status for t in report.tensors} == {"vacuous"}
        return
    assert_gradients_match(cls(axis=axis), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_for_huge_logits(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            y = lk.Softmax()(x)
            logy = lk.LogSoftmax()(x)
    np.testing.assert_allclose(y[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(y[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(logy[0], [0.0, -2e4, -1e4])
    assert np.all(np.isfinite(logy))


def test_match_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    x, dy = 3 * rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3))
    for ours, theirs in [(lk.Softmax(axis=1), torch.nn.Softmax(dim=1)),
                         (lk.LogSoftmax(axis=-1), torch.nn.LogSoftmax(dim=-1))]:
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        yt.backward(torch.from_numpy(dy))
        np.testing.assert_allclose(ours(x), yt.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_softmax_errors():
    with pytest.raises(ValueError, match=r"Softmax\(axis=2\): axis 2 is out of range for x of shape \(3, 4\)"):
        lk.Softmax(axis=2)(np.ones((3, 4)))
    with pytest.raises(ValueError, match="axis must be an integer, got 1.5"):
        lk.LogSoftmax(axis=1.5)
    with pytest.raises(TypeError, match=r"LogSoftmax\(\): expected x of dtype float32 or float64, got int64"):
        lk.LogSoftmax()(np.ones((2, 2), dtype=np.int64))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        lk.Softmax().backward(np.ones(3))


@pytest.mark.parametrize("cls", [lk.Softmax, lk.LogSoftmax])
def test_softmax_over_an_empty_axis_is_a_clear_error(cls):
    with pytest.raises(ValueError, match=cls.__name__ + r"\(\): expected a non-empty axis -1 .*"
                                                        r"got x of shape \(3, 0\)"):
        cls()(np.zeros((3, 0)))
    assert cls(axis=0)(np.zeros((0, 3)).T).shape == (3, 0)    # other axes may be empty
