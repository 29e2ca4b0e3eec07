import numpy as np
import pytest
from hypothesis import given, strategies as st

import layerkit as lk
from layerkit.testing import assert_gradients_match


def test_dropout_train_mask_and_scaling():
    x = np.ones((200, 500))
    layer = lk.Dropout(0.3, seed=0)
    y = layer(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.7)                 # inverted scaling
    assert abs(kept.mean() - 0.7) < 4 * np.sqrt(0.21 / x.size)   # four standard errors
    dx = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_allclose(dx, np.where(kept, 2 / 0.7, 0.0))  # same mask as forward


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_eval_is_identity_and_dtype_kept(dtype):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    layer = lk.Dropout(0.5).eval()
    y = layer(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(layer.backward(x), x)
    assert lk.Dropout(0.5).train()(x).dtype == dtype


def test_dropout_seeded_generator_reproduces_masks():
    x = np.ones((10, 10))
    a, b = lk.Dropout(0.5, seed=3), lk.Dropout(0.5, seed=3)
    np.testing.assert_array_equal(a(x), b(x))
    assert not np.array_equal(a(x), lk.Dropout(0.5, seed=4)(x))


@given(p=st.floats(0.0, 0.9), seed=st.integers(0, 2**16))
def test_dropout_gradcheck_with_frozen_mask(p, seed):
    x = np.random.default_rng(seed).standard_normal((6, 10))
    if not lk.Dropout(p, seed=seed)(x).any():
        # every element dropped: all gradients are zero, which the checker calls vacuous
        report = lk.gradcheck(lk.Dropout(p, seed=seed), x)
        assert report.tensors[0].status == "vacuous" and not report.passed
        return
    assert_gradients_match(lk.Dropout(p, seed=seed), x)


def test_dropout_errors():
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0.0, 1.0\), got 1.0"):
        lk.Dropout(1.0)
    with pytest.raises(ValueError, match=r"p must be in \[0.0, 1.0\), got -0.1"):
        lk.Dropout(-0.1)
    with pytest.raises(TypeError, match=r"Dropout\(p=0.5\): expected x of dtype"):
        lk.Dropout()(np.ones(3, dtype=np.int32))
