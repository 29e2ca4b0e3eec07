import numpy as np
import pytest
from hypothesis import given, strategies as st

from layerkit import gradcheck
from layerkit.layers.embedding import Embedding
from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match


def loop_embedding(ids, weight):
    """Plain-loop reference: y[p] = W[ids[p]] for every position p."""
    y = np.empty(ids.shape + (weight.shape[1],), dtype=weight.dtype)
    for p in np.ndindex(ids.shape):
        for e in range(weight.shape[1]):
            y[p + (e,)] = weight[int(ids[p]), e]
    return y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 5), ()])
@pytest.mark.parametrize("id_dtype", [np.int64, np.int32, np.uint8])
def test_embedding_forward_matches_loop(dtype, shape, id_dtype):
    layer = Embedding(10, 4, dtype=dtype, seed=0)
    ids = np.random.default_rng(1).integers(0, 10, size=shape).astype(id_dtype)
    y = layer(ids)
    assert y.shape == shape + (4,) and y.dtype == dtype
    np.testing.assert_array_equal(y, loop_embedding(ids, layer.params["weight"]))
    assert layer.backward(np.ones(y.shape, dtype=dtype)) is None
    assert layer.grads["weight"].dtype == dtype


def test_embedding_repeated_ids_accumulate_hand_worked():
    layer = Embedding(4, 2, dtype=np.float64)
    layer.params["weight"][...] = [[0, 1], [2, 3], [4, 5], [6, 7]]
    ids = np.array([[1, 3, 1], [0, 1, 3]])
    np.testing.assert_array_equal(layer(ids)[0], [[2, 3], [6, 7], [2, 3]])
    dy = np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 10], [11, 12]]], dtype=np.float64)
    assert layer.backward(dy) is None
    # row 0: δ[1,0]; row 1: δ[0,0] + δ[0,2] + δ[1,1]; row 2: unused; row 3: δ[0,1] + δ[1,2]
    np.testing.assert_array_equal(layer.grads["weight"], [[7, 8], [15, 18], [0, 0], [14, 16]])
    layer(ids); layer.backward(dy)                                   # accumulates until zero_grad
    np.testing.assert_array_equal(layer.grads["weight"][1], [30, 36])
    layer.zero_grad()
    assert not layer.grads["weight"].any()


def test_embedding_padding_idx_is_zero_and_gets_no_gradient():
    layer = Embedding(5, 3, padding_idx=0, dtype=np.float64, seed=2)
    assert not layer.params["weight"][0].any() and layer.params["weight"][1:].all()
    ids = np.array([[0, 2, 0], [2, 4, 0]])
    y = layer(ids)
    assert not y[0, 0].any() and not y[1, 2].any()
    layer.backward(np.ones(y.shape))
    np.testing.assert_array_equal(layer.grads["weight"], [[0] * 3, [0] * 3, [2] * 3, [0] * 3, [1] * 3])
    assert Embedding(5, 3, padding_idx=-1).padding_idx == 4                 # PyTorch's convention


@given(n=st.integers(1, 4), t=st.one_of(st.none(), st.integers(1, 4)), v=st.integers(2, 6),
       e=st.integers(1, 4), pad=st.booleans(), seed=st.integers(0, 2**16))
def test_embedding_gradcheck(n, t, v, e, pad, seed):
    rng = np.random.default_rng(seed)
    shape = (n,) if t is None else (n, t)
    layer = Embedding(v, e, padding_idx=0 if pad else None, dtype=np.float64, seed=seed)
    # With padding the ids avoid row 0: that row is frozen (gradient zeroed on purpose, as in
    # PyTorch), which is not the derivative of y = W[ids] — see the next test.
    ids = rng.integers(1 if pad else 0, v, size=shape)
    assert_gradients_match(layer, ids)


def test_embedding_padding_row_is_frozen_not_differentiated():
    """The finite-difference check sees that y depends on W[padding_idx] while the analytic
    gradient is zero: the freeze is a deliberate departure from ∂⟨y, δ⟩/∂W, and it is visible."""
    layer = Embedding(3, 2, padding_idx=0, dtype=np.float64, seed=0)
    report = gradcheck(layer, np.array([0, 1, 0]))
    assert not report.passed and report.tensors[0].worst.startswith("(0, ")
    assert_gradients_match(Embedding(3, 2, dtype=np.float64, seed=0), np.array([0, 1, 0]))


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_matches_torch(padding_idx, dtype):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    layer = Embedding(7, 5, padding_idx=padding_idx, dtype=dtype, seed=3)
    ref_layer = torch.nn.Embedding(7, 5, padding_idx=padding_idx).to(torch.from_numpy(
        np.zeros(0, dtype)).dtype)
    assert ref_layer.padding_idx == layer.padding_idx
    with torch.no_grad():
        ref_layer.weight.copy_(torch.from_numpy(layer.params["weight"]))
    ids = rng.integers(0, 7, size=(4, 6))
    ids[0, :3] = [2, 6, 2]                           # make sure repeats and padding ids occur
    dy = rng.standard_normal((4, 6, 5)).astype(dtype)
    yt = ref_layer(torch.from_numpy(ids))
    yt.backward(torch.from_numpy(dy))
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_array_equal(layer(ids), yt.detach().numpy())
    layer.backward(dy)
    np.testing.assert_allclose(layer.grads["weight"], ref_layer.weight.grad.numpy(), rtol=tol,
                               atol=tol)


def test_embedding_default_init_is_standard_normal_and_seeded():
    a = Embedding(400, 50, seed=7).params["weight"]
    np.testing.assert_array_equal(a, Embedding(400, 50, seed=7).params["weight"])
    assert a.dtype == np.float32 and abs(a.mean()) < 0.02 and abs(a.std() - 1) < 0.02
    custom = Embedding(3, 2, weight_init=lambda shape, rng, dtype: np.full(shape, 0.5, dtype))
    np.testing.assert_array_equal(custom.params["weight"], np.full((3, 2), 0.5))


def test_embedding_repr():
    assert repr(Embedding(100, 16)) == "Embedding(100, 16)"
    assert repr(Embedding(100, 16, padding_idx=0)) == "Embedding(100, 16, padding_idx=0)"


def test_embedding_errors():
    layer = Embedding(10, 4)
    with pytest.raises(ValueError, match=r"Embedding\(10, 4\): ids must be in \[0, 10\), got 10 at index \(1, 0\)"):
        layer(np.array([[3, 4], [10, 0]]))
    with pytest.raises(ValueError, match=r"Embedding\(10, 4\): ids must be in \[0, 10\), got -1 at index \(2,\)"):
        layer(np.array([0, 9, -1]))
    with pytest.raises(TypeError, match=r"Embedding\(10, 4\): expected ids of an integer dtype, got float64"):
        layer(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="expected ids of an integer dtype, got bool"):
        layer(np.array([True, False]))
    with pytest.raises(TypeError, match="expected ids to be a numpy array, got list"):
        layer([1, 2])
    with pytest.raises(RuntimeError, match=r"Embedding\(10, 4\): backward called before forward"):
        layer.backward(np.ones((2, 4), dtype=np.float32))
    layer(np.array([[1, 2, 3]]))
    with pytest.raises(ValueError, match=r"expected dy of shape \(1, 3, 4\).*got \(3, 4\)"):
        layer.backward(np.ones((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="num_embeddings must be a positive integer, got 0"):
        Embedding(0, 4)
    with pytest.raises(ValueError, match="embedding_dim must be a positive integer, got 2.5"):
        Embedding(10, 2.5)
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int32"):
        Embedding(10, 4, dtype=np.int32)
    with pytest.raises(ValueError, match=r"padding_idx must be an integer in \[-10, 10\), got 10"):
        Embedding(10, 4, padding_idx=10)
    with pytest.raises(ValueError, match=r"padding_idx must be an integer in \[-10, 10\), got -11"):
        Embedding(10, 4, padding_idx=-11)
    with pytest.raises(ValueError, match=r"weight_init returned weight of shape \(4, 10\), expected \(10, 4\)"):
        Embedding(10, 4, weight_init=lambda shape, rng, dtype: np.zeros(shape[::-1], dtype))
