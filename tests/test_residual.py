import io

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from layerkit.layers.activations import ReLU, Tanh
from layerkit.layers.containers import Concat, Identity, Residual, Sequential
from layerkit.layers.linear import Linear
from layerkit.layers.normalization import BatchNorm1D
from layerkit.layers.regularization import Dropout
from layerkit.testing import assert_gradients_match

F64 = np.float64


def mlp(d, h, o, seed=0, dtype=F64):
    return Sequential(Linear(d, h, dtype=dtype, seed=seed), Tanh(), Linear(h, o, dtype=dtype, seed=seed + 1))


def randomize_biases(layer, rng):
    for k, p in layer.params.items():
        if k.endswith("bias"):
            p[...] = rng.standard_normal(p.shape)


# -- Identity -----------------------------------------------------------------------------------

def test_identity():
    x = np.arange(6.0).reshape(2, 3)
    ident = Identity()
    assert ident(x) is x and repr(ident) == "Identity()" and ident.params == {}
    np.testing.assert_array_equal(ident.backward(2 * x), 2 * x)
    assert_gradients_match(Identity(), x)
    with pytest.raises(RuntimeError, match=r"Identity\(\): backward called before forward"):
        Identity().backward(x)
    with pytest.raises(ValueError, match=r"Identity\(\): expected dy of shape \(2, 3\)"):
        ident.backward(np.ones(3))


# -- Residual -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_residual_forward_matches_hand_composition(dtype):
    rng = np.random.default_rng(0)
    block = mlp(4, 6, 4, dtype=dtype)
    randomize_biases(block, rng)
    res = Residual(block)
    x = rng.standard_normal((5, 4)).astype(dtype)
    y = res(x)
    assert y.dtype == dtype
    w0, b0, w1, b1 = (block.params[k] for k in ("0.weight", "0.bias", "2.weight", "2.bias"))
    expected = np.tanh(x @ w0.T + b0) @ w1.T + b1 + x
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


def test_residual_with_projection_forward_and_backward_by_hand():
    rng = np.random.default_rng(1)
    block, proj = mlp(4, 6, 3), Linear(4, 3, dtype=F64, seed=7)
    res = Residual(block, proj)
    x, dy = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    np.testing.assert_allclose(res(x), block(x) + proj(x), rtol=1e-13)
    res(x)
    dx = res.backward(dy)
    block2, proj2 = mlp(4, 6, 3), Linear(4, 3, dtype=F64, seed=7)
    block2(x), proj2(x)
    np.testing.assert_allclose(dx, block2.backward(dy) + proj2.backward(dy), rtol=1e-13)
    np.testing.assert_allclose(res.grads["projection.weight"], proj2.grads["weight"], rtol=1e-13)
    np.testing.assert_allclose(res.grads["block.0.weight"], block2.grads["0.weight"], rtol=1e-13)


def test_residual_dotted_names_and_shared_arrays():
    res = Residual(mlp(4, 6, 3), Linear(4, 3))
    assert list(res.params) == ["block.0.weight", "block.0.bias", "block.2.weight", "block.2.bias",
                                "projection.weight", "projection.bias"]
    assert list(res.grads) == list(res.params)
    assert res.params["projection.weight"] is res.projection.params["weight"]
    assert list(Residual(Linear(2, 2)).params) == ["block.weight", "block.bias"]
    assert res.num_params() == 4 * 6 + 6 + 6 * 3 + 3 + 4 * 3 + 3


@settings(max_examples=15)
@given(n=st.integers(1, 4), d=st.integers(1, 4), h=st.integers(1, 5), proj=st.booleans(),
       seed=st.integers(0, 2**16))
def test_residual_gradcheck(n, d, h, proj, seed):
    rng = np.random.default_rng(seed)
    o = d + 1 if proj else d
    res = Residual(mlp(d, h, o, seed=seed), Linear(d, o, dtype=F64, seed=seed + 5) if proj else None)
    randomize_biases(res, rng)
    report = assert_gradients_match(res, rng.standard_normal((n, d)))
    assert {t.name for t in report.tensors} == {"x"} | set(res.params)


def test_residual_with_dropout_is_checked_with_frozen_mask():
    rng = np.random.default_rng(2)
    res = Residual(Sequential(Linear(4, 4, dtype=F64, seed=0), Dropout(0.5, seed=3)))
    assert_gradients_match(res, rng.standard_normal((3, 4)))


def test_residual_propagates_modes_zero_grad_astype():
    bn = BatchNorm1D(4)
    drop = Dropout(0.5)
    res = Residual(Sequential(Linear(4, 4), bn), drop)
    res.eval()
    assert not res.training and not bn.training and not drop.training
    res.train()
    assert bn.training and drop.training
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    res(x), res.backward(np.ones((5, 4), dtype=np.float32))
    assert any(g.any() for g in res.grads.values())
    res.zero_grad()
    assert not any(g.any() for g in res.grads.values())
    res.astype(np.float64)
    assert all(p.dtype == F64 for p in res.params.values()) and bn.running_mean.dtype == F64


def test_residual_repr():
    text = repr(Residual(Sequential(Linear(4, 3), ReLU()), Linear(4, 3)))
    assert text == ("Residual(\n  (block): Sequential(\n    (0): Linear(4, 3)\n    (1): ReLU()\n  )\n"
                    "  (projection): Linear(4, 3)\n)")
    assert repr(Residual(Identity())) == "Residual(\n  (block): Identity()\n)"


def test_residual_errors():
    with pytest.raises(ValueError, match=r"Residual: block\(x\) has shape \(5, 3\) but x has shape "
                                         r"\(5, 4\).*give Residual a projection"):
        Residual(Linear(4, 3))(np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"Residual: block\(x\) has shape \(5, 3\) but projection\(x\) "
                                         r"has shape \(5, 2\)"):
        Residual(Linear(4, 3), Linear(4, 2))(np.ones((5, 4)))
    with pytest.raises(TypeError, match=r"Residual: block \('not a layer'\) does not follow the Layer "
                                        r"contract: it has no forward, backward, params, grads"):
        Residual("not a layer")
    with pytest.raises(TypeError, match=r"Residual: projection \(.*\) does not follow the Layer contract"):
        Residual(Linear(2, 2), object())
    with pytest.raises(RuntimeError, match="Residual: backward called before forward"):
        Residual(Linear(2, 2)).backward(np.ones((1, 2)))
    with pytest.raises(TypeError, match="Residual: expected x to be a numpy array, got list"):
        Residual(Linear(2, 2))([[1.0, 2.0]])


# -- Concat -------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [1, -1])
def test_concat_two_blocks_forward_backward_by_hand(axis):
    rng = np.random.default_rng(4)
    a, b = Linear(4, 2, dtype=F64, seed=0), Linear(4, 3, dtype=F64, seed=1)
    randomize_biases(a, rng), randomize_biases(b, rng)
    cat = Concat(a, b, axis=axis)
    x, dy = rng.standard_normal((5, 4)), rng.standard_normal((5, 5))
    y = cat(x)
    np.testing.assert_allclose(y[:, :2], a(x), rtol=1e-13)
    np.testing.assert_allclose(y[:, 2:], b(x), rtol=1e-13)
    cat.zero_grad()
    cat(x)
    dx = cat.backward(dy)
    np.testing.assert_allclose(dx, dy[:, :2] @ a.params["weight"] + dy[:, 2:] @ b.params["weight"],
                               rtol=1e-12)
    np.testing.assert_allclose(cat.grads["1.weight"], dy[:, 2:].T @ x, rtol=1e-12)
    assert list(cat.params) == ["0.weight", "0.bias", "1.weight", "1.bias"]


@pytest.mark.parametrize("axis,shape", [(1, (2, 3, 4)), (-1, (2, 3, 4)), (1, (3, 4))])
def test_concat_identity_and_block_densenet(axis, shape):
    rng = np.random.default_rng(5)
    block = Sequential(Linear(4, 4, dtype=F64, seed=0), Tanh())
    cat = Concat(Identity(), block, axis=axis)
    x = rng.standard_normal(shape)
    y = cat(x)
    np.testing.assert_array_equal(y, np.concatenate([x, block(x)], axis=axis))
    assert list(cat.params) == ["1.0.weight", "1.0.bias"]
    assert_gradients_match(cat, x)


@settings(max_examples=12)
@given(n=st.integers(1, 3), d=st.integers(1, 4), sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       seed=st.integers(0, 2**16))
def test_concat_gradcheck(n, d, sizes, seed):
    rng = np.random.default_rng(seed)
    cat = Concat(*[mlp(d, 3, s, seed=seed + 2 * i) for i, s in enumerate(sizes)], axis=-1)
    randomize_biases(cat, rng)
    y = cat(rng.standard_normal((n, d)))
    assert y.shape == (n, sum(sizes))
    assert_gradients_match(cat, rng.standard_normal((n, d)))


def test_concat_of_residuals_inside_sequential_gradcheck_and_summary():
    rng = np.random.default_rng(6)
    net = Sequential(
        Linear(3, 4, dtype=F64, seed=0),
        Concat(Identity(), Residual(mlp(4, 5, 4, seed=1)), axis=1),       # (N, 8)
        Residual(mlp(8, 6, 2, seed=3), Linear(8, 2, dtype=F64, seed=5)),  # (N, 2)
    )
    assert "1.1.block.0.weight" in net.params and "2.projection.bias" in net.params
    randomize_biases(net, rng)
    x = rng.standard_normal((4, 3))
    h = net[0](x)
    expected = net[2].block(np.concatenate([h, net[1][1].block(h) + h], 1))
    np.testing.assert_allclose(net(x), expected + net[2].projection(np.concatenate(
        [h, net[1][1].block(h) + h], 1)), rtol=1e-12)
    assert_gradients_match(net, x)
    out = io.StringIO()
    net.summary((1, 3), file=out)
    text = out.getvalue()
    assert "1  Concat " in text and "(1, 8)" in text and "(1, 2)" in text
    total = net.num_params()
    assert f"total params: {total:,}" in text
    out = io.StringIO()
    net[2].summary((1, 8), file=out)
    assert "0  Residual " in out.getvalue() and f"total params: {net[2].num_params():,}" in out.getvalue()


def test_concat_image_channels_and_modes():
    rng = np.random.default_rng(7)
    bn = BatchNorm1D(3, dtype=F64)
    cat = Concat(Identity(), Sequential(Tanh(), bn).eval())            # (N, 3, L): channels
    assert cat.training and not bn.training
    cat.train()
    assert bn.training
    x = rng.standard_normal((2, 3, 4))
    assert cat(x).shape == (2, 6, 4)
    cat.astype(np.float32)
    assert bn.running_var.dtype == np.float32
    assert cat(x.astype(np.float32)).dtype == np.float32


def test_concat_repr_and_sequence_protocol():
    cat = Concat([Identity(), Linear(4, 2)], axis=-1)
    assert repr(cat) == "Concat(\n  (0): Identity()\n  (1): Linear(4, 2)\n  axis=-1\n)"
    assert len(cat) == 2 and isinstance(cat[1], Linear) and list(cat) == cat.layers


def test_concat_errors():
    with pytest.raises(ValueError, match=r"Concat: block outputs must have the same shape outside "
                                         r"axis 1, got \(2, 3, 4\), \(2, 3, 2\)"):
        Concat(Identity(), Linear(4, 2), axis=1)(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"Concat: axis 2 is out of range for block outputs with 2 axes"):
        Concat(Identity(), axis=2)(np.ones((2, 3)))
    with pytest.raises(ValueError, match="Concat: needs at least one block"):
        Concat()
    with pytest.raises(ValueError, match="Concat: axis must be an integer, got 1.5"):
        Concat(Identity(), axis=1.5)
    with pytest.raises(TypeError, match=r"Concat: block 1 \(42\) does not follow the Layer contract"):
        Concat(Identity(), 42)
    with pytest.raises(RuntimeError, match="Concat: backward called before forward"):
        Concat(Identity()).backward(np.ones((1, 2)))
    cat = Concat(Identity(), Identity())
    cat(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Concat: expected dy of shape \(2, 6\) \(the output of "
                                         r"forward\), got \(2, 3\)"):
        cat.backward(np.ones((2, 3)))


def test_sequential_contract_error_unchanged():
    with pytest.raises(TypeError, match="Sequential: layer 1 .* does not follow the Layer contract: "
                                        "it has no forward"):
        Sequential(Linear(2, 2), object())
