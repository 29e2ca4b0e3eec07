"""Losses: plain-loop references, PyTorch, finite differences, stability and every error path."""

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import layerkit as lk
from helpers import torch_or_skip
from layerkit.testing import assert_gradients_match
from layerkit.check import LossAsLayer

REDUCTIONS = ["mean", "sum", "batchmean"]
LOSSES = {"CrossEntropy": lk.CrossEntropy, "MSE": lk.MSE, "BCEWithLogits": lk.BCEWithLogits}


# -- plain-loop references: Python floats and the math module only ---------------------------
def _reduce(total, count, n, reduction):
    return {"mean": total / count, "sum": total, "batchmean": total / n}[reduction]


def ref_cross_entropy(z, t, reduction):
    K = z.shape[-1]
    rows = z.reshape(-1, K).tolist()
    indices = t.ndim == z.ndim - 1
    trows = t.reshape(-1).tolist() if indices else t.reshape(-1, K).tolist()
    total = 0.0
    for row, tr in zip(rows, trows):
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        if indices:
            total += lse - row[tr]
        else:
            total += sum(-tr[k] * (row[k] - lse) for k in range(K))
    return _reduce(total, len(rows), z.shape[0], reduction)


def ref_mse(p, t, reduction):
    total = sum((a - b) ** 2 for a, b in zip(p.ravel().tolist(), t.ravel().tolist()))
    return _reduce(total, p.size, p.shape[0], reduction)


def ref_bce(z, t, reduction):  # the textbook formula; fine for the moderate logits used here
    total = 0.0
    for v, tv in zip(z.ravel().tolist(), t.ravel().tolist()):
        s = 1.0 / (1.0 + math.exp(-v))
        total += -tv * math.log(s) - (1.0 - tv) * math.log(1.0 - s)
    return _reduce(total, z.size, z.shape[0], reduction)


def make_case(kind, shape, rng, dtype=np.float64):
    """(loss name, pred, target, reference) for a loss kind and a pred shape (N, [T,] K)."""
    pred = (2 * rng.standard_normal(shape)).astype(dtype)
    if kind == "ce_index":
        return "CrossEntropy", pred, rng.integers(0, shape[-1], shape[:-1]), ref_cross_entropy
    if kind in ("ce_prob", "ce_unnormalised"):
        t = rng.random(shape)
        if kind == "ce_prob":
            t /= t.sum(-1, keepdims=True)
        return "CrossEntropy", pred, t.astype(dtype), ref_cross_entropy
    if kind == "mse":
        return "MSE", pred, rng.standard_normal(shape).astype(dtype), ref_mse
    return "BCEWithLogits", pred, rng.random(shape).astype(dtype), ref_bce


KINDS = ["ce_index", "ce_prob", "ce_unnormalised", "mse", "bce"]
SHAPES = [(4, 5), (3, 2, 4)]  # (N, K) and (N, T, K)


# -- forward against the plain loops ----------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_plain_loop(kind, shape, reduction, dtype):
    name, pred, target, ref = make_case(kind, shape, np.random.default_rng(0), dtype)
    loss = LOSSES[name](reduction=reduction)
    value = loss(pred, target)
    assert type(value) is float
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert value == pytest.approx(ref(pred.astype(np.float64), target, reduction), rel=tol)
    grad = loss.backward()
    assert grad.shape == pred.shape and grad.dtype == dtype


def test_hand_worked_examples():
    # softmax(0, ln 3) = (1/4, 3/4): ℓ = ln 4 for class 0, ln(4/3) for class 1; mean of the two
    z = np.log(np.array([[1.0, 3.0], [1.0, 3.0]]))
    ce = lk.CrossEntropy()
    assert ce(z, np.array([0, 1])) == pytest.approx((math.log(4) + math.log(4 / 3)) / 2, rel=1e-15)
    np.testing.assert_allclose(ce.backward(), [[-0.375, 0.375], [0.125, -0.125]], rtol=1e-15)
    # sequences: batchmean = Σ over N and T / N; mean = / (N·T)
    zs, ts = np.zeros((2, 3, 4)), np.zeros((2, 3), dtype=np.int32)
    assert lk.CrossEntropy(reduction="batchmean")(zs, ts) == pytest.approx(3 * math.log(4))
    assert lk.CrossEntropy(reduction="mean")(zs, ts) == pytest.approx(math.log(4))
    mse = lk.MSE(reduction="batchmean")
    assert mse(np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2))) == 15.0
    np.testing.assert_array_equal(mse.backward(), [[1.0, 2.0], [3.0, 4.0]])
    bce = lk.BCEWithLogits(reduction="sum")
    assert bce(np.zeros((1, 2)), np.array([[0.0, 1.0]])) == pytest.approx(2 * math.log(2))
    np.testing.assert_allclose(bce.backward(), [[0.5, -0.5]])


# -- forward and backward against PyTorch -----------------------------------------------------
def torch_loss(torch, kind, z, t, reduction, ignore_index=-100):  # -100: PyTorch's default
    F = torch.nn.functional
    red = "sum" if reduction == "batchmean" else reduction
    if kind.startswith("ce"):
        tt = torch.from_numpy(t)
        if z.ndim == 3:  # PyTorch wants the classes on axis 1: (N, K, T)
            z = z.permute(0, 2, 1)
            tt = tt if t.ndim == 2 else tt.permute(0, 2, 1)
        out = F.cross_entropy(z, tt.long() if kind == "ce_index" else tt, reduction=red,
                              ignore_index=ignore_index)
    elif kind == "mse":
        out = F.mse_loss(z, torch.from_numpy(t), reduction=red)
    else:
        out = F.binary_cross_entropy_with_logits(z, torch.from_numpy(t), reduction=red)
    return out / z.shape[0] if reduction == "batchmean" else out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_pytorch(kind, shape, reduction):
    torch = torch_or_skip()
    name, pred, target, _ = make_case(kind, shape, np.random.default_rng(1))
    loss = LOSSES[name](reduction=reduction)
    value, grad = loss(pred, target), loss.backward()
    z = torch.tensor(pred, requires_grad=True)
    expected = torch_loss(torch, kind, z, target, reduction)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-10, atol=1e-14)


# -- backward by central finite differences ---------------------------------------------------
def numeric_grad(loss, pred, target, h=1e-6):
    """∂loss/∂pred by central differences, one element at a time."""
    grad = np.zeros_like(pred)
    for i in np.ndindex(pred.shape):
        old = pred[i]
        pred[i] = old + h
        up = loss.forward(pred, target)
        pred[i] = old - h
        down = loss.forward(pred, target)
        pred[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


@settings(deadline=None, max_examples=30)
@given(kind=st.sampled_from(KINDS), reduction=st.sampled_from(REDUCTIONS), n=st.integers(1, 5),
       t=st.one_of(st.none(), st.integers(1, 4)), k=st.integers(2, 6),
       seed=st.integers(0, 2**32 - 1))
def test_backward_matches_finite_differences(kind, reduction, n, t, k, seed):
    shape = (n, k) if t is None else (n, t, k)
    name, pred, target, _ = make_case(kind, shape, np.random.default_rng(seed))
    loss = LOSSES[name](reduction=reduction)
    loss.forward(pred, target)
    analytic = loss.backward()
    numeric = numeric_grad(loss, pred.copy(), target)
    # relative tolerance, with a floor at 1e-6 of the largest entry (round-off of the loss / h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())


# -- stability --------------------------------------------------------------------------------
def _strict():
    """Warnings become errors and numpy raises on overflow, 0-division and invalid operations.
    Underflow stays allowed: exp(−2e4) rounding to 0 is the correct result, not a failure."""
    warnings.simplefilter("error")
    return np.errstate(over="raise", divide="raise", invalid="raise")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_huge_logits(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4]], dtype=dtype)
    with warnings.catch_warnings(), _strict():
        ce = lk.CrossEntropy(reduction="sum")
        assert ce(z, np.array([0, 1])) == 0.0  # confident and correct
        np.testing.assert_array_equal(ce.backward(), np.zeros_like(z))
        assert ce(z, np.array([1, 0])) == pytest.approx(4e4)  # confident and wrong: 2e4 each
        np.testing.assert_array_equal(ce.backward(), [[1, -1, 0], [-1, 1, 0]])
        value = ce(z, np.full(z.shape, 1 / 3, dtype=dtype))
        assert np.isfinite(value) and np.all(np.isfinite(ce.backward()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_huge_logits(dtype):
    z = np.array([[1e4, -1e4]], dtype=dtype)
    with warnings.catch_warnings(), _strict():
        bce = lk.BCEWithLogits(reduction="sum")
        assert bce(z, np.array([[1.0, 0.0]])) == 0.0
        np.testing.assert_array_equal(bce.backward(), [[0.0, 0.0]])
        assert bce(z, np.array([[0.0, 1.0]])) == pytest.approx(2e4)
        np.testing.assert_array_equal(bce.backward(), [[1.0, -1.0]])


def test_confident_correct_prediction_costs_almost_nothing():
    z = np.array([[12.0, -3.0, 0.5], [0.0, 20.0, 1.0]])
    assert 0 < lk.CrossEntropy()(z, np.array([0, 1])) < 1e-5


# -- contract: repr, call, cache ---------------------------------------------------------------
@pytest.mark.parametrize("name", LOSSES)
def test_repr_call_and_cache(name):
    loss = LOSSES[name](reduction="sum")
    assert repr(loss) == f"{name}(reduction='sum')"
    assert repr(LOSSES[name]()) == f"{name}(reduction='mean')"
    rng = np.random.default_rng(2)
    pred, other = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    target = rng.random((2, 3))
    loss(other, target)
    assert loss(pred, target) == loss.forward(pred, target)
    g = loss.backward()
    loss.forward(other, target)  # the cache is overwritten by each forward
    assert not np.allclose(loss.backward(), g)
    loss.forward(pred, target)
    np.testing.assert_array_equal(loss.backward(), g)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64])
def test_any_integer_dtype_for_class_indices(dtype):
    z = np.random.default_rng(3).standard_normal((3, 4))
    t = np.array([3, 0, 2])
    assert lk.CrossEntropy()(z, t.astype(dtype)) == lk.CrossEntropy()(z, t)


# -- errors -----------------------------------------------------------------------------------
Z = np.zeros((4, 3))
BAD_INPUTS = [
    ("CrossEntropy", Z, np.array([0, 1, -1, 2]), ValueError,
     r"class index -1 .*\[0, K\) with K = 3"),
    ("CrossEntropy", Z, np.array([0, 1, 3, 2]), ValueError,
     r"class index 3 .*\[0, K\) with K = 3"),
    ("CrossEntropy", Z, np.zeros((4, 2)), ValueError,
     r"class indices with shape \(4,\) or of probabilities with shape \(4, 3\).*got \(4, 2\)"),
    ("CrossEntropy", Z, np.zeros(3, dtype=int), ValueError, r"shape \(4,\) .*got \(3,\)"),
    ("CrossEntropy", Z, np.full((4, 3), 1.5), ValueError, r"target values in \[0, 1\], got 1.5"),
    ("CrossEntropy", Z, np.zeros(4), TypeError, "target \\(class indices\\) of an integer dtype"),
    ("CrossEntropy", Z, np.zeros((4, 3), dtype=int), TypeError, "float32 or float64, got int"),
    ("CrossEntropy", Z, [0, 1, 2, 0], TypeError, "target to be a numpy array, got list"),
    ("CrossEntropy", np.zeros(3), np.array(0), ValueError,
     r"pred of shape \(N, K\) or \(N, T, K\)"),
    ("CrossEntropy", np.zeros((4, 0)), np.zeros(4, dtype=int), ValueError, "non-empty pred"),
    ("BCEWithLogits", Z, np.full((4, 3), -0.1), ValueError, r"in \[0, 1\], got -0.1"),
    ("BCEWithLogits", Z, np.full((4, 3), np.nan), ValueError, "target contains NaN"),
    ("BCEWithLogits", Z, np.zeros((4, 1)), ValueError, r"target of shape \(4, 3\), got \(4, 1\)"),
    ("MSE", Z, np.zeros((1, 3)), ValueError, r"target of shape \(4, 3\), got \(1, 3\)"),
    ("MSE", Z, np.zeros(3), ValueError, r"target of shape \(4, 3\), got \(3,\)"),
    ("MSE", np.full((4, 3), np.inf), Z, ValueError, "pred contains NaN or infinity"),
]


@pytest.mark.parametrize("name, pred, target, error, match", BAD_INPUTS)
def test_bad_input(name, pred, target, error, match):
    with pytest.raises(error, match=rf"^{name}\(reduction='mean'\): .*{match}"):
        LOSSES[name]()(pred, target)


@pytest.mark.parametrize("name", LOSSES)
def test_int_pred_rejected(name):
    with pytest.raises(TypeError, match=r"expected pred of dtype float32 or float64, got int64"):
        LOSSES[name]()(np.zeros((2, 3), dtype=np.int64), np.zeros((2, 3)))


@pytest.mark.parametrize("name", LOSSES)
def test_bad_reduction_and_positional_reduction(name):
    with pytest.raises(ValueError, match=rf"{name}: reduction must be one of 'mean', 'sum', "
                                         r"'batchmean', got 'avg'"):
        LOSSES[name](reduction="avg")
    with pytest.raises(TypeError):
        LOSSES[name]("sum")


@pytest.mark.parametrize("name", LOSSES)
def test_backward_before_forward(name):
    message = f"{name}(reduction='batchmean'): backward called before forward"
    with pytest.raises(RuntimeError, match=re.escape(message)):
        LOSSES[name](reduction="batchmean").backward()


def test_mse_beyond_the_float_range_is_inf_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # an overflow warning fails the test
        assert lk.MSE().forward(np.array([[1e200, 1.0]]), np.zeros((1, 2))) == np.inf
        loss = lk.MSE()
        value = loss.forward(np.array([[3e38, 0.0]], dtype=np.float32),
                             np.array([[-3e38, 0.0]], dtype=np.float32))
        g = loss.backward()            # 2 · 6e38 / 2 exceeds float32's 3.4e38
    assert value == pytest.approx(1.8e77, rel=1e-6)   # (6e38)² / 2 fits in float64
    assert g.dtype == np.float32 and g[0, 0] == np.inf and g[0, 1] == 0


# -- CrossEntropy(ignore_index=...) -------------------------------------------------------------
IGNORE_VALUES = [-100, 0, 3]           # PyTorch's default (outside [0, K)), a PAD id, another id
IGNORE_SHAPES = [(6, 5), (3, 4, 5)]    # (N, K) and (N, T, K)


def ignore_case(shape, ignore_index, seed, dtype=np.float64):
    """(pred, target, keep): about 40 % of the positions hold ignore_index, at least one of
    them and at least one kept; the kept ones hold the other classes."""
    rng = np.random.default_rng(seed)
    pred = (2 * rng.standard_normal(shape)).astype(dtype)
    others = [k for k in range(shape[-1]) if k != ignore_index]
    target = rng.choice(others, size=shape[:-1])
    drop = rng.random(shape[:-1]) < 0.4
    drop.flat[0], drop.flat[-1] = True, False
    target[drop] = ignore_index
    return pred, target, ~drop


@pytest.mark.parametrize("ignore_index", IGNORE_VALUES)
@pytest.mark.parametrize("shape", IGNORE_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ignore_index_matches_pytorch(ignore_index, shape, reduction):
    torch = torch_or_skip()
    pred, target, keep = ignore_case(shape, ignore_index, seed=4)
    loss = lk.CrossEntropy(reduction=reduction, ignore_index=ignore_index)
    value, grad = loss(pred, target), loss.backward()
    z = torch.tensor(pred, requires_grad=True)
    expected = torch_loss(torch, "ce_index", z, target, reduction, ignore_index=ignore_index)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert np.all(grad[~keep] == 0) and np.all(grad[keep] != 0)


@pytest.mark.parametrize("ignore_index", IGNORE_VALUES)
@pytest.mark.parametrize("shape", IGNORE_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ignore_index_is_cross_entropy_of_the_kept_positions(ignore_index, shape, reduction,
                                                             dtype):
    pred, target, keep = ignore_case(shape, ignore_index, seed=5, dtype=dtype)
    loss = lk.CrossEntropy(reduction=reduction, ignore_index=ignore_index)
    value, grad = loss(pred, target), loss.backward()
    assert type(value) is float and grad.shape == pred.shape and grad.dtype == dtype
    # the plain loop over the kept rows: 'mean' divides by their number, 'batchmean' by N
    kept_pred, kept_target = pred[keep], target[keep]
    total = ref_cross_entropy(kept_pred.astype(np.float64), kept_target, "sum")
    expected = total / {"mean": keep.sum(), "sum": 1, "batchmean": shape[0]}[reduction]
    assert value == pytest.approx(expected, rel=1e-5 if dtype == np.float32 else 1e-12)
    # the hand-written masked loss it replaces: CrossEntropy of the kept rows alone, the
    # gradient scattered back and zeros elsewhere; 'mean' and 'sum' give the same numbers
    plain = lk.CrossEntropy(reduction="sum" if reduction == "batchmean" else reduction)
    plain_value, plain_grad = plain(kept_pred, kept_target), plain.backward()
    if reduction == "batchmean":
        assert value == pytest.approx(plain_value / shape[0], rel=1e-15)
        np.testing.assert_allclose(grad[keep], plain_grad / dtype(shape[0]), rtol=1e-6)
    else:
        assert value == plain_value
        np.testing.assert_array_equal(grad[keep], plain_grad)
    np.testing.assert_array_equal(grad[~keep], 0)


def test_ignore_index_that_never_occurs_changes_nothing():
    _, pred, target, _ = make_case("ce_index", (3, 4, 5), np.random.default_rng(6))
    for reduction in REDUCTIONS:
        plain = lk.CrossEntropy(reduction=reduction)
        masked = lk.CrossEntropy(reduction=reduction, ignore_index=-100)
        assert masked(pred, target) == plain(pred, target)
        np.testing.assert_array_equal(masked.backward(), plain.backward())


@pytest.mark.parametrize("ignore_index", [-100, 0])
@pytest.mark.parametrize("shape", IGNORE_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ignore_index_gradcheck(ignore_index, shape, reduction):
    pred, target, _ = ignore_case(shape, ignore_index, seed=7)
    loss = lk.CrossEntropy(reduction=reduction, ignore_index=ignore_index)
    assert_gradients_match(LossAsLayer(loss, target), pred)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64])
def test_ignore_index_with_any_integer_dtype(dtype):
    pred, target, keep = ignore_case((4, 3, 5), 0, seed=8)
    expected = lk.CrossEntropy()(pred[keep], target[keep])
    assert lk.CrossEntropy(ignore_index=0)(pred, target.astype(dtype)) == expected
    # an ignore_index the dtype cannot hold matches no position: everything counts
    assert lk.CrossEntropy(ignore_index=-100)(pred, target.astype(dtype)) \
        == lk.CrossEntropy()(pred, target)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ignore_index_everything_ignored(reduction, dtype):
    """No kept position: 'sum' and 'batchmean' are 0, 'mean' is NaN (0/0, as PyTorch), the
    gradient is 0, and numpy warns about nothing."""
    pred = np.random.default_rng(9).standard_normal((3, 2, 4)).astype(dtype)
    loss = lk.CrossEntropy(reduction=reduction, ignore_index=-100)
    with warnings.catch_warnings(), _strict():
        value = loss(pred, np.full((3, 2), -100))
        grad = loss.backward()
    if reduction == "mean":
        assert math.isnan(value)
    else:
        assert value == 0.0
    assert grad.dtype == dtype
    np.testing.assert_array_equal(grad, np.zeros_like(pred))


def test_ignore_index_repr():
    assert repr(lk.CrossEntropy(ignore_index=0)) == "CrossEntropy(reduction='mean', ignore_index=0)"
    assert repr(lk.CrossEntropy(reduction="sum", ignore_index=np.int64(-100))) \
        == "CrossEntropy(reduction='sum', ignore_index=-100)"
    assert repr(lk.CrossEntropy(ignore_index=None)) == "CrossEntropy(reduction='mean')"


@pytest.mark.parametrize("bad", [1.5, True, np.bool_(False), "0", 2.0])
def test_ignore_index_must_be_an_integer(bad):
    with pytest.raises(ValueError, match=rf"^CrossEntropy: ignore_index must be an integer or "
                                         rf"None, got {re.escape(repr(bad))}$"):
        lk.CrossEntropy(ignore_index=bad)


def test_ignore_index_rejects_probability_targets():
    t = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"^CrossEntropy\(reduction='mean', ignore_index=-100\): "
                                         r"ignore_index applies to class-index targets of shape "
                                         r"\(4,\), got a target of probabilities of shape "
                                         r"\(4, 3\)"):
        lk.CrossEntropy(ignore_index=-100)(Z, t)


@pytest.mark.parametrize("ignore_index, target, bad", [
    (-100, [0, -100, 3, 2], 3),
    (-100, [-100, -1, 1, 2], -1),
    (0, [0, -1, 0, 2], -1),           # an ignore_index inside [0, K) keeps the check for others
    (2, [2, 2, 2, 5], 5),
])
def test_ignore_index_other_out_of_range_indices_still_raise(ignore_index, target, bad):
    loss = lk.CrossEntropy(ignore_index=ignore_index)
    with pytest.raises(ValueError, match=rf"^CrossEntropy\(reduction='mean', "
                                         rf"ignore_index={ignore_index}\): class index {bad} "
                                         r"is out of range \[0, K\) with K = 3"):
        loss(Z, np.array(target))
