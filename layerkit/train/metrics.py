"""Evaluation: the loss and metrics (accuracy, perplexity) of a model on a data set, and the
helpers the fit loop shares with it (data checks, batching, train/eval mode)."""

from __future__ import annotations

import math

import numpy as np

from ..grad_mode import no_grad
from ..data.batching import batches
from ..layers.softmax import logsumexp
from ..losses import MSE, BCEWithLogits, CrossEntropy
from ..validation import positive_int
from .history import METRICS


def is_arrays(data) -> bool:
    return (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(a, np.ndarray) for a in data))


def check_data(who: str, name: str, data, *, allow_iterable: bool = False) -> None:
    if is_arrays(data):
        x, y = data
        if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
            raise ValueError(f"{who}: expected {name} = (x, y) with the same number of samples N "
                             f"on axis 0, got shapes {x.shape} and {y.shape}")
        if len(x) == 0:
            raise ValueError(f"{who}: expected {name} with at least one sample, got 0")
        return
    if callable(data):
        return
    if allow_iterable and hasattr(data, "__iter__") and not isinstance(data, (str, bytes)):
        return
    what = "a tuple (x, y) of numpy arrays or a callable epoch -> iterable of (xb, yb)"
    if allow_iterable:
        what += ", or an iterable of (xb, yb)"
    raise TypeError(f"{who}: expected {name} to be {what}, got {type(data).__name__}")


def check_metrics(who: str, metrics) -> tuple[str, ...]:
    if metrics is None:
        return ()
    if isinstance(metrics, str):
        metrics = (metrics,)
    try:
        metrics = tuple(metrics)
    except TypeError:
        raise TypeError(f"{who}: metrics must be a sequence of metric names, got "
                        f"{type(metrics).__name__}") from None
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"{who}: unknown metric {m!r}; expected one of "
                             f"{', '.join(repr(k) for k in METRICS)}")
    return tuple(dict.fromkeys(metrics))


def iterate(data, epoch: int, batch_size, shuffle: bool, seed):
    """One pass over ``data``: (x, y) arrays are cut into mini-batches, a callable is called."""
    if is_arrays(data):
        return batches(data[0], data[1], batch_size, shuffle=shuffle, seed=seed)
    if callable(data):
        return data(epoch)
    return data


def output_of(out):
    """The prediction of a forward that returns (y, states...) as recurrent layers do."""
    return out[0] if isinstance(out, tuple) else out


def is_sequence_target(yb) -> bool:
    return isinstance(yb, np.ndarray) and yb.ndim >= 2 and np.issubdtype(yb.dtype, np.integer)


class LossMean:
    """The loss of all batches seen as if they were one batch, under the loss's reduction.

    ``'mean'`` weights each batch by its number of positions (K-vectors for CrossEntropy,
    elements for MSE/BCEWithLogits; rows for a loss of unknown kind), ``'batchmean'`` by its
    rows, and ``'sum'`` adds the batch values up.
    """

    def __init__(self, loss):
        self.loss = loss
        self.reduction = getattr(loss, "reduction", "mean")
        self.total = 0.0
        self.weight = 0

    def add(self, value: float, out) -> None:
        if self.reduction == "sum":
            self.total += value
            self.weight = 1
            return
        if self.reduction == "batchmean" or not isinstance(out, np.ndarray) or out.ndim == 0:
            w = len(out)
        elif isinstance(self.loss, CrossEntropy):
            w = out.size // out.shape[-1]
        elif isinstance(self.loss, (MSE, BCEWithLogits)):
            w = out.size
        else:
            w = len(out)
        self.total += value * w
        self.weight += w

    @property
    def value(self) -> float:
        return self.total / self.weight if self.weight else float("nan")


def _class_targets(who: str, metric: str, out, yb) -> np.ndarray:
    ok = (isinstance(out, np.ndarray) and out.ndim >= 1 and isinstance(yb, np.ndarray)
          and np.issubdtype(yb.dtype, np.integer) and yb.shape == out.shape[:-1])
    if not ok:
        got = (f"{yb.dtype} of shape {yb.shape}" if isinstance(yb, np.ndarray)
               else type(yb).__name__)
        want = np.shape(out)[:-1]
        raise ValueError(f"{who}: metric {metric!r} needs integer class targets of shape {want} "
                         f"(the model output {np.shape(out)} without its last axis), got {got}")
    return yb


class _Metrics:
    """Accumulates accuracy (correct / positions) and summed cross-entropy (nats / tokens)."""

    def __init__(self, who: str, metrics: tuple[str, ...]):
        self.who, self.metrics = who, metrics
        self.correct = self.positions = 0
        self.nll = 0.0
        self.tokens = 0

    def add(self, out, yb) -> None:
        if "accuracy" in self.metrics:
            t = _class_targets(self.who, "accuracy", out, yb)
            self.correct += int(np.sum(np.argmax(out, axis=-1) == t))
            self.positions += t.size
        if "perplexity" in self.metrics:
            t = _class_targets(self.who, "perplexity", out, yb)
            z = out.astype(np.float64, copy=False)
            log_norm = logsumexp(z, axis=-1)
            picked = np.take_along_axis(z, t.astype(np.intp)[..., None], axis=-1)[..., 0]
            self.nll += float(np.sum(log_norm - picked))
            self.tokens += t.size

    def result(self) -> dict:
        out = {}
        if "accuracy" in self.metrics:
            out["accuracy"] = self.correct / self.positions if self.positions else float("nan")
        if "perplexity" in self.metrics:
            out["perplexity"] = (math.exp(self.nll / self.tokens) if self.tokens
                                 else float("nan"))
        return out


def reset_state(model) -> None:
    reset = getattr(model, "reset_state", None)
    if callable(reset):
        reset()


def set_mode(model, training: bool) -> None:
    if callable(getattr(model, "train", None)):
        model.train(training)


def evaluate_data(who: str, model, loss, data, *, epoch: int, batch_size, metrics,
              where: str) -> dict:
    reset_state(model)
    set_mode(model, False)
    mean, acc = LossMean(loss), _Metrics(who, metrics)
    samples = 0
    for k, (xb, yb) in enumerate(iterate(data, epoch, batch_size, False, None), start=1):
        with no_grad():
            out = output_of(model.forward(xb))
        if not np.all(np.isfinite(out)):
            raise FloatingPointError(f"{who}: the model output contains NaN or infinity in "
                                     f"{where}, batch {k}")
        value = loss.forward(out, yb)
        if not math.isfinite(value):
            raise FloatingPointError(f"{who}: the loss is {value} in {where}, batch {k}")
        mean.add(value, out)
        acc.add(out, yb)
        samples += len(xb)
    if samples == 0:
        raise ValueError(f"{who}: the data for {where} yielded no batches")
    return {"loss": mean.value, **acc.result(), "samples": samples}


def evaluate(model, loss, data, *, batch_size=None, metrics=("accuracy",), epoch: int = 1) -> dict:
    """Loss and metrics of ``model`` on a data set, in evaluation mode.

    Parameters
    ----------
    model : object
        Anything with ``forward(x)``; ``reset_state()`` is called first if it has one.
    loss : loss object
        E.g. :class:`~layerkit.losses.CrossEntropy`.
    data : tuple (x, y) of ndarrays, callable or iterable
        Arrays are cut into mini-batches of ``batch_size`` in order; a callable is called with
        ``epoch`` and must return an iterable of ``(xb, yb)``; an iterable gives the batches.
    batch_size : int, optional
        Required when ``data`` are arrays.
    metrics : sequence of str
        Any of ``"accuracy"`` (argmax over the last axis against integer targets, over all
        positions) and ``"perplexity"`` (exp of the mean per-token cross-entropy in nats,
        computed from the logits, whatever ``loss`` is).
    epoch : int
        Passed to a callable ``data``.

    Returns
    -------
    dict
        ``{"loss": L, <metric>: value, ..., "samples": N}``. L is the loss of the whole data set
        as one batch: for ``reduction='mean'`` the mean over all positions, not the mean of
        batch means. The model's training/evaluation mode is restored afterwards.
    """
    who = "evaluate"
    check_data(who, "data", data, allow_iterable=True)
    metrics = check_metrics(who, metrics)
    if is_arrays(data):
        batch_size = positive_int(who, "batch_size", batch_size)
    was_training = getattr(model, "training", None)
    try:
        return evaluate_data(who, model, loss, data, epoch=epoch, batch_size=batch_size,
                         metrics=metrics, where="evaluation")
    finally:
        if was_training is not None:
            set_mode(model, was_training)
