"""CrossEntropy(axis=1): the class axis of dense predictions (N, K, H, W) or (N, K, L), as
PyTorch's cross_entropy, with and without ignore_index."""

import math
import re

import numpy as np
import pytest

import layerkit as lk
from helpers import torch_or_skip
from layerkit.check import LossAsLayer
from layerkit.testing import assert_gradients_match

REDUCTIONS = ["mean", "sum", "batchmean"]
SHAPES = [(2, 4, 3, 5), (3, 4, 6), (2, 3, 2, 2, 3)]   # (N, K, H, W), (N, K, L), (N, K, D, H, W)


def dense_case(shape, seed, ignore_index=None, dtype=np.float64):
    """(pred, target, keep) with classes on axis 1; about 30 % of the positions ignored."""
    rng = np.random.default_rng(seed)
    pred = (2 * rng.standard_normal(shape)).astype(dtype)
    ids_shape = shape[:1] + shape[2:]
    target = rng.integers(0, shape[1], size=ids_shape)
    keep = np.ones(ids_shape, dtype=bool)
    if ignore_index is not None:
        keep = rng.random(ids_shape) >= 0.3
        keep.flat[0], keep.flat[-1] = False, True
        target[~keep] = ignore_index
    return pred, target, keep


def plain_loop(pred, target, reduction, ignore_index=None):
    """−log softmax(pred[n, :, i])[target[n, i]] summed over kept positions, one at a time."""
    n_batch, k = pred.shape[:2]
    total, count = 0.0, 0
    for n in range(n_batch):
        for i in np.ndindex(target.shape[1:]):
            y = target[(n,) + i]
            if ignore_index is not None and y == ignore_index:
                continue
            z = [pred[(n, c) + i] for c in range(k)]
            m = max(z)
            total += -(z[y] - m - math.log(sum(math.exp(v - m) for v in z)))
            count += 1
    return total / {"mean": count, "sum": 1, "batchmean": n_batch}[reduction]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [None, -100, 1])
def test_matches_pytorch(shape, reduction, ignore_index):
    torch = torch_or_skip()
    pred, target, keep = dense_case(shape, 1, ignore_index)
    loss = lk.CrossEntropy(axis=1, reduction=reduction,
                           **({} if ignore_index is None else {"ignore_index": ignore_index}))
    value, grad = loss(pred, target), loss.backward()
    z = torch.tensor(pred, requires_grad=True)
    t_red = "sum" if reduction == "batchmean" else reduction
    expected = torch.nn.functional.cross_entropy(
        z, torch.tensor(target), reduction=t_red,
        ignore_index=-100 if ignore_index is None else ignore_index)
    if reduction == "batchmean":
        expected = expected / shape[0]
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-10, atol=1e-15)
    ignored = np.broadcast_to(~keep[:, None], shape)
    assert np.all(grad[ignored] == 0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ignore_index", [None, -100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_plain_loop(shape, ignore_index, dtype):
    pred, target, _ = dense_case(shape, 2, ignore_index, dtype)
    kw = {} if ignore_index is None else {"ignore_index": ignore_index}
    for reduction in REDUCTIONS:
        value = lk.CrossEntropy(axis=1, reduction=reduction, **kw)(pred, target)
        expected = plain_loop(pred.astype(np.float64), target, reduction, ignore_index)
        assert value == pytest.approx(expected, rel=1e-5 if dtype == np.float32 else 1e-12)


def test_hand_worked_example():
    """N = 1, K = 2, L = 2: logits (0, 0) at position 0 (target 1) and (log 3, 0) at position
    1 (target 0). p = (1/2, 1/2) and (3/4, 1/4): ℓ = log 2 and log(4/3); mean = log(8/3) / 2;
    ∂L/∂z = (p − one-hot) / 2 = ((1/4, −1/4), (−1/8, 1/8)) per position."""
    pred = np.array([[[0.0, math.log(3.0)], [0.0, 0.0]]])     # (1, K=2, L=2)
    loss = lk.CrossEntropy(axis=1)
    assert loss(pred, np.array([[1, 0]])) == pytest.approx(math.log(8 / 3) / 2, rel=1e-15)
    np.testing.assert_allclose(loss.backward(), [[[0.25, -0.125], [-0.25, 0.125]]], rtol=1e-15)


@pytest.mark.parametrize("shape", SHAPES[:2])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [None, 0])
def test_gradcheck(shape, reduction, ignore_index):
    pred, target, _ = dense_case(shape, 3, ignore_index)
    kw = {} if ignore_index is None else {"ignore_index": ignore_index}
    assert_gradients_match(LossAsLayer(lk.CrossEntropy(axis=1, reduction=reduction, **kw),
                                       target), pred)


@pytest.mark.parametrize("axis", [1, 2, -2])
def test_any_class_axis_equals_moving_it_last(axis):
    rng = np.random.default_rng(4)
    pred = rng.standard_normal((2, 3, 4, 5))
    last = np.moveaxis(pred, axis, -1)
    target = rng.integers(0, last.shape[-1], size=last.shape[:-1])
    probs = rng.random(last.shape)
    probs /= probs.sum(-1, keepdims=True)
    for t_last, t in ((target, target), (probs, np.moveaxis(probs, -1, axis))):
        moved, plain = lk.CrossEntropy(axis=axis), lk.CrossEntropy()
        assert moved(pred, t) == pytest.approx(plain(last, t_last), rel=1e-14)
        grad = moved.backward()
        assert grad.shape == pred.shape and grad.flags.c_contiguous
        np.testing.assert_allclose(np.moveaxis(grad, axis, -1), plain.backward(), rtol=1e-13)


def test_everything_ignored_is_nan_for_mean_and_zero_gradient():
    pred = np.ones((2, 3, 4))
    for reduction, expected in (("mean", math.nan), ("sum", 0.0), ("batchmean", 0.0)):
        loss = lk.CrossEntropy(axis=1, reduction=reduction, ignore_index=-1)
        value = loss(pred, np.full((2, 4), -1))
        assert math.isnan(value) if math.isnan(expected) else value == expected
        np.testing.assert_array_equal(loss.backward(), np.zeros_like(pred))


def test_float32_gradient_keeps_dtype():
    pred, target, _ = dense_case((2, 3, 4, 4), 5, dtype=np.float32)
    loss = lk.CrossEntropy(axis=1)
    loss(pred, target)
    assert loss.backward().dtype == np.float32


def test_repr():
    assert repr(lk.CrossEntropy(axis=1)) == "CrossEntropy(reduction='mean', axis=1)"
    assert repr(lk.CrossEntropy(axis=1, ignore_index=255)) == \
        "CrossEntropy(reduction='mean', ignore_index=255, axis=1)"


@pytest.mark.parametrize("axis, shape", [(0, (2, 3, 4)), (3, (2, 3, 4)), (-3, (2, 3, 4)),
                                         (1, (5,))])
def test_bad_axis_for_pred(axis, shape):
    with pytest.raises(ValueError, match=rf"^CrossEntropy\(reduction='mean', axis={axis}\): "
                                         rf"axis {axis} is not a class axis of pred of shape "
                                         rf"{re.escape(str(shape))}"):
        lk.CrossEntropy(axis=axis)(np.zeros(shape), np.zeros(shape[:1], dtype=int))


@pytest.mark.parametrize("bad", [1.0, True, "1", None])
def test_axis_must_be_an_integer(bad):
    with pytest.raises(ValueError, match=r"^CrossEntropy: axis must be an integer"):
        lk.CrossEntropy(axis=bad)


def test_target_shape_is_checked_in_the_callers_layout():
    pred = np.zeros((2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"expected target of class indices with shape "
                                         r"\(2, 4, 5\) or of probabilities with shape "
                                         r"\(2, 3, 4, 5\) \(pred is \(2, 3, 4, 5\), classes on "
                                         r"axis 1\), got \(2, 5, 4\)"):
        lk.CrossEntropy(axis=1)(pred, np.zeros((2, 5, 4), dtype=int))
    with pytest.raises(ValueError, match=r"class index 3 is out of range \[0, K\) with K = 3"):
        lk.CrossEntropy(axis=1)(pred, np.full((2, 4, 5), 3))
    with pytest.raises(TypeError, match=r"expected target to be a numpy array, got list"):
        lk.CrossEntropy(axis=1)(pred, [[0]])
