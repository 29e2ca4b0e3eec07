"""Losses: CrossEntropy (from logits), MSE and BCEWithLogits.

A loss is not a Layer: ``forward(pred, target)`` returns a Python float and ``backward()``
returns ∂loss/∂pred with pred's shape and dtype. The work is done in float64 and the logits go
through log-sum-exp / ``log1p(exp(−|z|))``, so logits of ±1e4 give finite results without
overflow (``exp`` of very negative numbers underflows to 0, which is the correct result).
"""

from __future__ import annotations

import math

import numpy as np

from .layers.activations import sigmoid_and_exp
from .layers.softmax import softmax_and_log
from .validation import check_array, check_finite, integer, one_of

__all__ = ["CrossEntropy", "MSE", "BCEWithLogits", "REDUCTIONS"]

REDUCTIONS = ("mean", "sum", "batchmean")

_REDUCTION_DOC = """reduction : {'mean', 'sum', 'batchmean'}, default 'mean'
        How the per-position losses ℓ are combined into one number L: ``'mean'`` averages over
        every position (see the class notes for what a position is), ``'sum'`` adds them all
        up, ``'batchmean'`` adds them all up and divides by the batch size N = pred.shape[0]
        (for sequences (N, T, ...): E = Σ_t E_t summed over time, averaged over the batch).
        The gradient carries the same factor c (1/count, 1 or 1/N)."""


def _shared_doc(cls):
    """Insert the one shared description of ``reduction`` into a loss's docstring."""
    if cls.__doc__:  # None under python -OO
        cls.__doc__ = cls.__doc__.replace("{reduction}", _REDUCTION_DOC)
    return cls


class _Loss:
    """Shared machinery: the reduction, the cache, ``__call__`` and ``__repr__``."""

    def __init__(self, *, reduction: str = "mean"):
        self.reduction = one_of(type(self).__name__, "reduction", reduction, REDUCTIONS)
        self._cache = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r}{self._extra_repr()})"

    def _extra_repr(self) -> str:
        """Further constructor arguments for ``repr``, each as ``", name=value"``."""
        return ""

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> float:
        return self.forward(pred, target)

    def _check_pred(self, pred) -> None:
        check_array(self, pred, (...,), name="pred")
        if pred.ndim == 0 or pred.size == 0:
            raise ValueError(f"{self!r}: expected a non-empty pred of shape (N, ...), "
                             f"got {tuple(pred.shape)}")
        check_finite(self, pred, "pred")

    def _check_probabilities(self, target: np.ndarray) -> None:
        check_finite(self, target, "target")
        bad = (target < 0) | (target > 1)
        if np.any(bad):
            raise ValueError(f"{self!r}: expected target values in [0, 1], "
                             f"got {target[bad].flat[0]}")

    def _scale(self, pred: np.ndarray, count: int) -> float:
        """The factor c with L = c Σ ℓ: 1/count ('mean'), 1 ('sum') or 1/N ('batchmean').
        With count = 0 (every position ignored) 'mean' has nothing to average: c = 0, so the
        gradient is 0; the loss's value is then the caller's to choose."""
        mean = 1.0 / count if count else 0.0
        return {"mean": mean, "sum": 1.0, "batchmean": 1.0 / pred.shape[0]}[self.reduction]

    def _finish(self, losses: np.ndarray, grad: np.ndarray, pred: np.ndarray, count: int) -> float:
        """Return c Σ ℓ; cache the unscaled gradient, c and pred's dtype for backward."""
        c = self._scale(pred, count)
        self._cache = (grad, c, pred.dtype)
        with np.errstate(over="ignore"):      # beyond float64's range the loss is inf, quietly
            return float(c * np.sum(losses))

    def backward(self) -> np.ndarray:
        """Return ∂L/∂pred for the last forward, with pred's shape and dtype."""
        if self._cache is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        grad, c, dtype = self._cache
        with np.errstate(over="ignore"):      # beyond pred's dtype's range: ±inf, quietly
            return (c * grad).astype(dtype, copy=False)


@_shared_doc
class CrossEntropy(_Loss):
    """Cross-entropy of the softmax of logits along the class axis against a target.

    Parameters
    ----------
    {reduction}
    axis : int, default -1
        The class axis K of pred. −1: pred is (N, ..., K). 1 (PyTorch's layout for dense
        predictions): pred is (N, K, H, W) or (N, K, L), class-index targets (N, H, W) or (N, L),
        probability targets of pred's shape. Any axis but the batch axis 0 (checked at
        ``forward`` against pred's rank); the result equals moving that axis to the end.
    ignore_index : int or None, default None
        A class-index target value that marks positions to leave out (PAD tokens, or −100 as
        in PyTorch): they add 0 to the loss, get exactly 0 gradient and are not counted by
        ``'mean'``. It may lie outside [0, K); any other index must still be in [0, K). Only
        for class-index targets: with probabilities, ``forward`` raises ValueError.

    Shape
    -----
    pred : (N, K) or (N, T, K) logits z (any ``(N, ..., K)``), float32 or float64; with
        ``axis=1``: (N, K, *spatial).
    target : class indices of pred's shape without the class axis (any integer dtype, values
        in [0, K), or ignore_index), or probabilities / one-hot of exactly pred.shape (float,
        values in [0, 1]).

    Notes
    -----
    A position is one K-vector z along the class axis (N of them for (N, K), N·T for
    (N, T, K), N·H·W for (N, K, H, W) with ``axis=1``). With
    log p_k = z_k − m − log Σ_j e^{z_j − m}, m = max_j z_j (log-sum-exp, no overflow),

        ℓ = −Σ_k t_k log p_k          (class index y: t = one-hot(y), ℓ = −log p_y)

    and the gradient is ∂L/∂z_k = c (p_k Σ_j t_j − t_k), i.e. c (softmax(z) − t) whenever
    the target sums to 1 (always for class indices).

    With ignore_index, only the kept positions P = {positions with y ≠ ignore_index} enter:

        L = c Σ_{P} ℓ,    c = 1/|P| ('mean'), 1 ('sum'), 1/N ('batchmean'),

    and ∂L/∂z = 0 at every ignored position. This is the cross-entropy of the kept rows alone,
    except that ``'batchmean'`` still divides by N = pred.shape[0]. If every position is
    ignored, ``'sum'`` and ``'batchmean'`` give 0 and ``'mean'`` gives NaN (0/0, as PyTorch;
    without a numpy warning), and the gradient is 0 everywhere in all three cases.
    """

    def __init__(self, *, reduction: str = "mean", ignore_index: int | None = None,
                 axis: int = -1):
        super().__init__(reduction=reduction)
        self.ignore_index = integer(type(self).__name__, "ignore_index", ignore_index,
                                    or_none=True)
        self.axis = integer(type(self).__name__, "axis", axis)

    def _extra_repr(self) -> str:
        return ("" if self.ignore_index is None else f", ignore_index={self.ignore_index}") + (
            "" if self.axis == -1 else f", axis={self.axis}")

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        """Return L (a float) and keep what backward needs."""
        self._check_pred(pred)
        if self.axis == -1:
            return self._forward_classes_last(pred, target)
        pred, target = self._classes_last(pred, target)
        value = self._forward_classes_last(pred, target)
        grad, c, dtype = self._cache
        self._cache = (np.ascontiguousarray(np.moveaxis(grad, -1, self.axis)), c, dtype)
        return value

    def _classes_last(self, pred: np.ndarray, target) -> tuple:
        """Check ``axis`` and the target's shape in the caller's layout, then move the class
        axis of pred (and of a probability target) to the end."""
        who, shape = self, tuple(pred.shape)
        if pred.ndim < 2 or not (1 <= self.axis < pred.ndim or -pred.ndim < self.axis < -1):
            raise ValueError(f"{who}: axis {self.axis} is not a class axis of pred of shape "
                             f"{shape} (expected 1 <= axis < {pred.ndim} or {-pred.ndim} < "
                             f"axis < 0; axis 0 is the batch)")
        ids_shape = shape[:self.axis % pred.ndim] + shape[self.axis % pred.ndim + 1:]
        if not isinstance(target, np.ndarray):
            check_array(who, target, (...,), name="target")  # raises TypeError
        if target.shape not in (ids_shape, shape):
            raise ValueError(f"{who}: expected target of class indices with shape {ids_shape} "
                             f"or of probabilities with shape {shape} (pred is {shape}, classes "
                             f"on axis {self.axis}), got {tuple(target.shape)}")
        if target.shape == shape:
            target = np.moveaxis(target, self.axis, -1)
        return np.moveaxis(pred, self.axis, -1), target

    def _forward_classes_last(self, pred: np.ndarray, target) -> float:
        """``forward`` for pred (N, ..., K): L, with ∂ℓ/∂z cached in that layout."""
        keep = self._check_target(pred, target)
        p, logp = softmax_and_log(pred.astype(np.float64, copy=False))
        if target.shape == pred.shape[:-1]:
            losses, grad, count = self._class_index_terms(p, logp, target, keep)
        else:
            losses, grad, count = self._probability_terms(p, logp, target)
        value = self._finish(losses, grad, pred, count)
        if count == 0 and self.reduction == "mean":  # every position ignored: 0/0, as PyTorch
            return math.nan
        return value

    def _check_target(self, pred: np.ndarray, target) -> np.ndarray | None:
        """Validate ``target`` against ``pred``; return the mask of kept positions (class
        indices with ignore_index), or None when every position counts."""
        who = self    # formatted only for an error message
        if pred.ndim < 2:
            raise ValueError(f"{who}: expected pred of shape (N, K) or (N, T, K), "
                             f"got {tuple(pred.shape)}")
        K = pred.shape[-1]
        if not isinstance(target, np.ndarray):
            check_array(who, target, (...,), name="target")  # raises TypeError
        if target.shape not in (pred.shape[:-1], pred.shape):
            raise ValueError(
                f"{who}: expected target of class indices with shape {tuple(pred.shape[:-1])} "
                f"or of probabilities with shape {tuple(pred.shape)} (pred is "
                f"{tuple(pred.shape)}), got {tuple(target.shape)}")
        if target.shape == pred.shape:
            if self.ignore_index is not None:
                raise ValueError(
                    f"{who}: ignore_index applies to class-index targets of shape "
                    f"{tuple(pred.shape[:-1])}, got a target of probabilities of shape "
                    f"{tuple(target.shape)}")
            check_array(who, target, pred.shape, name="target (probabilities)")
            self._check_probabilities(target)
            return None
        check_array(who, target, pred.shape[:-1], name="target (class indices)", kind="int")
        keep = None if self.ignore_index is None else target != self.ignore_index
        out = (target < 0) | (target >= K)
        if keep is not None:
            out &= keep
        if np.any(out):
            raise ValueError(f"{who}: class index {target[out].flat[0]} is out of range "
                             f"[0, K) with K = {K}")
        return keep

    @staticmethod
    def _class_index_terms(p, logp, target, keep) -> tuple[np.ndarray, np.ndarray, int]:
        """(ℓ, ∂ℓ/∂z, count) for class indices y, t = one-hot(y): ℓ = −log p_y and
        ∂ℓ/∂z = p − one-hot(y) (written into ``p``); ignored positions (``keep`` False) are
        dropped from ℓ and the count, and get gradient 0."""
        count = p.size // p.shape[-1]
        # ignored positions may hold any integer: look up class 0 there, then drop them
        y = target if keep is None else np.where(keep, target, 0)
        idx = y.astype(np.intp)[..., None]
        losses = -np.take_along_axis(logp, idx, axis=-1)
        grad = p
        np.put_along_axis(grad, idx, np.take_along_axis(grad, idx, axis=-1) - 1.0, axis=-1)
        if keep is not None:
            losses = losses[keep]
            grad[~keep] = 0.0
            count = losses.size
        return losses, grad, count

    @staticmethod
    def _probability_terms(p, logp, target) -> tuple[np.ndarray, np.ndarray, int]:
        """(ℓ, ∂ℓ/∂z, count) for probabilities t: ℓ = −Σ_k t_k log p_k and
        ∂ℓ/∂z_k = p_k Σ_j t_j − t_k; every position counts."""
        t = target.astype(np.float64, copy=False)
        losses = -np.sum(t * logp, axis=-1)
        grad = p * np.sum(t, axis=-1, keepdims=True) - t
        return losses, grad, p.size // p.shape[-1]


@_shared_doc
class MSE(_Loss):
    """Mean squared error between pred and a target of exactly the same shape.

    Parameters
    ----------
    {reduction}

    Shape
    -----
    pred, target : any identical shape (N, ...), float32 or float64; no broadcasting.

    Notes
    -----
    A position is one element (``'mean'`` divides by pred.size, as PyTorch):

        ℓ = (pred − target)²,    ∂L/∂pred = 2 c (pred − target).

    Computed in float64. A loss beyond float64's range (|pred − target| > 1e154) is ``inf``,
    without an overflow warning; :func:`layerkit.train.fit` stops on a non-finite loss.
    """

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        """Return L (a float) and keep what backward needs."""
        self._check_pred(pred)
        check_array(self, target, pred.shape, name="target")
        check_finite(self, target, "target")
        diff = pred.astype(np.float64, copy=False) - target
        with np.errstate(over="ignore"):      # |diff| > 1e154: ℓ = inf (fit stops on it)
            return self._finish(diff * diff, 2.0 * diff, pred, pred.size)


@_shared_doc
class BCEWithLogits(_Loss):
    """Binary cross-entropy of sigmoid(z) against a target in [0, 1], from logits z.

    Parameters
    ----------
    {reduction}

    Shape
    -----
    pred : logits z of any shape (N, ...), float32 or float64.
    target : probabilities t of exactly pred's shape, float, values in [0, 1].

    Notes
    -----
    A position is one element (``'mean'`` divides by pred.size, as PyTorch). The loss
    ℓ = −t log σ(z) − (1 − t) log(1 − σ(z)) is computed in the stable form

        ℓ = max(z, 0) − z t + log(1 + e^{−|z|}),

    and ∂L/∂z = c (σ(z) − t), with σ(z) = 1 / (1 + e^{−|z|}) for z ≥ 0 and
    e^{−|z|} / (1 + e^{−|z|}) otherwise (no overflow).
    """

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        """Return L (a float) and keep what backward needs."""
        self._check_pred(pred)
        check_array(self, target, pred.shape, name="target")
        self._check_probabilities(target)
        z = pred.astype(np.float64, copy=False)
        t = target.astype(np.float64, copy=False)
        sigmoid, e = sigmoid_and_exp(z)
        losses = np.maximum(z, 0.0) - z * t + np.log1p(e)
        return self._finish(losses, sigmoid - t, pred, pred.size)
