"""Training loop, evaluation metrics and progress display.

:func:`fit` trains any object with ``forward``/``backward`` and ``params``/``grads`` (a layer, a
:class:`~layerkit.layers.containers.Sequential`, a model from :mod:`layerkit.models`) with a loss
from :mod:`layerkit.losses` and an optimizer from :mod:`layerkit.optim`, and returns a
:class:`History` of per-epoch records. :func:`evaluate` computes the loss and metrics of a data
set. Checkpoints (:func:`save`, :func:`load`, :func:`save_params`, :func:`load_params`) live in
:mod:`layerkit.checkpoint` and are re-exported here.
"""

from __future__ import annotations

import json
import math
import numbers
import sys
import time

import numpy as np

from .checkpoint import FORMAT, FORMAT_VERSION, load, load_params, save, save_params
from .data import batches as _batches
from .losses import MSE, BCEWithLogits, CrossEntropy
from .optim import clip_grad_norm
from .validation import number_in, positive_int

__all__ = ["fit", "evaluate", "History", "METRICS", "save", "load", "save_params",
           "load_params", "FORMAT", "FORMAT_VERSION"]

METRICS = ("accuracy", "perplexity")


# --------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------

class History(list):
    """Per-epoch records of :func:`fit`: a list of flat dicts, one per epoch, in order.

    Each record has the keys ``epoch`` (1, 2, ...), ``train_loss``, ``seconds`` (wall time of
    the epoch, validation included), ``samples_per_s`` and ``tokens_per_s`` (training throughput;
    ``tokens_per_s`` is None unless the targets are integer sequences ``(N, T)``); with
    validation data also ``val_loss`` and ``val_<metric>`` for each metric.

    Being a list of plain dicts of numbers, it goes straight into ``json.dumps``; ``str()``
    gives a table.

    Examples
    --------
    >>> history = fit(...)
    >>> history[-1]["val_accuracy"]
    >>> history.column("train_loss")        # [loss of epoch 1, epoch 2, ...]
    >>> print(history)                      # a table
    >>> history.to_json()                   # a JSON array of the records
    """

    def column(self, key: str) -> list:
        """The values of ``key`` in every record, in epoch order."""
        if self and key not in self[0]:
            raise KeyError(f"History.column: no key {key!r}; the records have {list(self[0])}")
        return [r.get(key) for r in self]

    def to_json(self, **kwargs) -> str:
        """The records as a JSON array (``kwargs`` go to ``json.dumps``)."""
        return json.dumps(list(self), **kwargs)

    def __str__(self) -> str:
        if not self:
            return "History(no epochs)"
        keys = [k for k in self[0] if any(r.get(k) is not None for r in self)]
        rows = [[_fmt(r.get(k)) for k in keys] for r in self]
        widths = [max(len(k), *(len(row[j]) for row in rows)) for j, k in enumerate(keys)]
        lines = ["  ".join(k.rjust(w) for k, w in zip(keys, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"History({list.__repr__(self)})"


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1e4:
            return f"{v:.0f}" if math.isfinite(v) else str(v)
        return f"{v:.4g}" if v != 0 and abs(v) < 1e-3 else f"{v:.4f}"
    return str(v)


# --------------------------------------------------------------------------------------------
# Data and metrics
# --------------------------------------------------------------------------------------------

def _is_arrays(data) -> bool:
    return (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(a, np.ndarray) for a in data))


def _check_data(who: str, name: str, data, *, allow_iterable: bool = False) -> None:
    if _is_arrays(data):
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


def _check_metrics(who: str, metrics) -> tuple[str, ...]:
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


def _iterate(data, epoch: int, batch_size, shuffle: bool, seed):
    """One pass over ``data``: (x, y) arrays are cut into mini-batches, a callable is called."""
    if _is_arrays(data):
        return _batches(data[0], data[1], batch_size, shuffle=shuffle, seed=seed)
    if callable(data):
        return data(epoch)
    return data


def _output(out):
    """The prediction of a forward that returns (y, states...) as recurrent layers do."""
    return out[0] if isinstance(out, tuple) else out


def _is_sequence_target(yb) -> bool:
    return isinstance(yb, np.ndarray) and yb.ndim >= 2 and np.issubdtype(yb.dtype, np.integer)


class _LossMean:
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
            m = np.max(z, axis=-1, keepdims=True)
            log_norm = (np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True)) + m)[..., 0]
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


def _reset_state(model) -> None:
    reset = getattr(model, "reset_state", None)
    if callable(reset):
        reset()


def _set_mode(model, training: bool) -> None:
    if callable(getattr(model, "train", None)):
        model.train(training)


def _evaluate(who: str, model, loss, data, *, epoch: int, batch_size, metrics,
              where: str) -> dict:
    _reset_state(model)
    _set_mode(model, False)
    mean, acc = _LossMean(loss), _Metrics(who, metrics)
    samples = 0
    for k, (xb, yb) in enumerate(_iterate(data, epoch, batch_size, False, None), start=1):
        out = _output(model.forward(xb))
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
    _check_data(who, "data", data, allow_iterable=True)
    metrics = _check_metrics(who, metrics)
    if _is_arrays(data):
        batch_size = positive_int(who, "batch_size", batch_size)
    was_training = getattr(model, "training", None)
    try:
        return _evaluate(who, model, loss, data, epoch=epoch, batch_size=batch_size,
                         metrics=metrics, where="evaluation")
    finally:
        if was_training is not None:
            _set_mode(model, was_training)


# --------------------------------------------------------------------------------------------
# Progress display
# --------------------------------------------------------------------------------------------

def _import_tqdm():
    """``tqdm.tqdm`` if the optional package is installed, else None."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def _rate(n: float) -> str:
    return f"{n / 1e3:.1f}k" if n >= 1e4 else f"{n:.0f}"


def _postfix(loss_value: float, samples_per_s: float, tokens_per_s, extra: dict) -> dict:
    post = {"loss": f"{loss_value:.4f}"}
    post.update({k: f"{v:.4f}" for k, v in extra.items()})
    if tokens_per_s is not None:
        post["tok/s"] = _rate(tokens_per_s)
    else:
        post["samples/s"] = _rate(samples_per_s)
    return post


class _Progress:
    """A tqdm bar per epoch, or one plain line per epoch on stderr, or nothing."""

    def __init__(self, enabled: bool, epochs: int):
        self.epochs = epochs
        self.tqdm = _import_tqdm() if enabled else None
        self.plain = enabled and self.tqdm is None
        self.bar = None

    def start(self, epoch: int, total) -> None:
        if self.tqdm is not None:
            self.bar = self.tqdm(total=total, desc=f"epoch {epoch}/{self.epochs}", unit="batch",
                                 leave=True, file=sys.stderr)

    def step(self, post: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)

    def end(self, record: dict, post: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix(post, refresh=True)
            self.bar.close()
            self.bar = None
        elif self.plain:
            parts = [f"{k} {_fmt(v)}" for k, v in record.items()
                     if k not in ("epoch", "seconds", "samples_per_s", "tokens_per_s")
                     and v is not None]
            rate = (f"{_rate(record['tokens_per_s'])} tokens/s" if record["tokens_per_s"]
                    is not None else f"{_rate(record['samples_per_s'])} samples/s")
            print(f"epoch {record['epoch']}/{self.epochs}: " + ", ".join(parts)
                  + f", {rate}, {record['seconds']:.2f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------

def fit(model, loss, optimizer, train_data, *, epochs, batch_size=None, val_data=None,
        metrics=("accuracy",), clip_norm=None, seed=0, shuffle=True, progress=True,
        log=None) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_data``; validate after each epoch.

    Each step: ``model.train()``, ``optimizer.zero_grad()``, ``out = model.forward(xb)``,
    ``loss.forward(out, yb)``, ``model.backward(loss.backward())``, optionally
    ``clip_grad_norm(model, clip_norm)``, ``optimizer.step()``. A forward returning a tuple
    ``(y, states...)`` contributes ``y``.

    Parameters
    ----------
    model : object
        ``forward``, ``backward``, ``params``/``grads``, ``train(mode)``; if it has
        ``reset_state()`` that is called at the start of every epoch and before validation (a
        stateful language model carries its hidden state across consecutive windows itself).
    loss : loss object
        ``forward(pred, target) -> float`` and ``backward() -> dpred`` (:mod:`layerkit.losses`).
    optimizer : optimizer
        ``zero_grad()`` and ``step()`` (:mod:`layerkit.optim`), built on ``model``.
    train_data : tuple (x, y) of ndarrays, or callable
        Arrays are cut into mini-batches of ``batch_size`` with :func:`layerkit.data.batches`,
        in a new order every epoch drawn from ``seed``. A callable is called as
        ``train_data(epoch)`` (epoch = 1, 2, ...) and returns an iterable of ``(xb, yb)``, e.g.
        ``lambda epoch: sequence_batches(ids, 32, 64)``; it controls its own order.
    epochs : int
        Number of passes, ≥ 1.
    batch_size : int, optional
        Rows per mini-batch; required when ``train_data`` or ``val_data`` are arrays (validation
        batches are taken in order), not used for callables.
    val_data : tuple (x, y) of ndarrays, or callable, optional
        Evaluated after every epoch in evaluation mode (see :func:`evaluate`).
    metrics : sequence of str
        Validation metrics: ``"accuracy"``, ``"perplexity"``; ``()`` for none.
    clip_norm : float, optional
        Clip the global gradient norm to this value before each update.
    seed : int
        Seeds the shuffling of array data: the same seed (and the same model, optimizer and data)
        gives bit-identical weights.
    shuffle : bool
        Shuffle array training data (validation data are never shuffled).
    progress : bool
        Show progress on stderr: a tqdm bar per epoch (loss and throughput in the postfix) when
        the optional ``tqdm`` package is installed, else one plain line per epoch. False: silent.
    log : callable or writable file, optional
        After each epoch, ``log(record)`` is called, or, for an object with ``write``, the record
        is written as one line of JSON (JSON Lines).

    Returns
    -------
    History
        One record per epoch (see :class:`History`). ``train_loss`` is the epoch's running mean
        and ``val_loss`` the loss of the whole validation set, both weighted by the number of
        positions (for ``reduction='mean'``) so batches of different sizes count correctly.
        Throughput counts the training part of the epoch (batching included, validation not).
        The model's training/evaluation mode is restored on return.

    Raises
    ------
    FloatingPointError
        If the model output, the loss or (with ``clip_norm``) the gradient norm is NaN or
        infinite; the message names the epoch and step.
    ValueError, TypeError
        For invalid arguments, before any training.
    """
    who = "fit"
    epochs = positive_int(who, "epochs", epochs)
    _check_data(who, "train_data", train_data)
    if val_data is not None:
        _check_data(who, "val_data", val_data)
    if _is_arrays(train_data) or _is_arrays(val_data):
        if batch_size is None:
            raise ValueError(f"{who}: batch_size is required when the data are (x, y) arrays, "
                             f"got None")
        batch_size = positive_int(who, "batch_size", batch_size)
    metrics = _check_metrics(who, metrics)
    if clip_norm is not None:
        clip_norm = number_in(who, "clip_norm", clip_norm, 0.0, math.inf, low_open=True)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"{who}: seed must be an integer, got {seed!r}")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise ValueError(f"{who}: shuffle must be True or False, got {shuffle!r}")
    if not isinstance(progress, (bool, np.bool_)):
        raise ValueError(f"{who}: progress must be True or False, got {progress!r}")
    if log is not None and not (callable(log) or hasattr(log, "write")):
        raise TypeError(f"{who}: log must be a callable or a writable file, "
                        f"got {type(log).__name__}")
    for name, obj, attrs in (("model", model, ("forward", "backward")),
                             ("loss", loss, ("forward", "backward")),
                             ("optimizer", optimizer, ("zero_grad", "step"))):
        missing = [a for a in attrs if not callable(getattr(obj, a, None))]
        if missing:
            raise TypeError(f"{who}: expected {name} with {' and '.join(attrs)}, got "
                            f"{type(obj).__name__} without {', '.join(missing)}")

    train_iter = (_batches(train_data[0], train_data[1], batch_size, shuffle=bool(shuffle),
                           seed=int(seed)) if _is_arrays(train_data) else None)
    history = History()
    was_training = getattr(model, "training", None)
    bar = _Progress(bool(progress), epochs)
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            _reset_state(model)
            data = train_iter if train_iter is not None else train_data(epoch)
            total = len(data) if hasattr(data, "__len__") else None
            bar.start(epoch, total)
            mean = _LossMean(loss)
            samples = tokens = 0
            train_time = 0.0
            seq = False
            step = 0
            for step, (xb, yb) in enumerate(data, start=1):
                where = f"epoch {epoch}, step {step}"
                _set_mode(model, True)
                optimizer.zero_grad()
                out = _output(model.forward(xb))
                if not np.all(np.isfinite(out)):
                    raise FloatingPointError(f"{who}: the model output contains NaN or infinity "
                                             f"at {where}; lower the learning rate or set "
                                             f"clip_norm")
                value = loss.forward(out, yb)
                if not math.isfinite(value):
                    raise FloatingPointError(f"{who}: the loss is {value} at {where}")
                model.backward(loss.backward())
                if clip_norm is not None:
                    norm = clip_grad_norm(model, clip_norm)
                    if not math.isfinite(norm):
                        raise FloatingPointError(f"{who}: the gradient norm is {norm} at "
                                                 f"{where}")
                optimizer.step()
                train_time = time.perf_counter() - t0
                mean.add(value, out)
                samples += len(xb)
                if _is_sequence_target(yb):
                    seq = True
                    tokens += yb.size
                sps = samples / train_time if train_time > 0 else float("inf")
                tps = tokens / train_time if seq and train_time > 0 else None
                bar.step(_postfix(mean.value, sps, tps, {}))
            if step == 0:
                raise ValueError(f"{who}: train_data yielded no batches in epoch {epoch}")
            record = {"epoch": epoch, "train_loss": mean.value}
            if val_data is not None:
                res = _evaluate(who, model, loss, val_data, epoch=epoch, batch_size=batch_size,
                                metrics=metrics, where=f"validation after epoch {epoch}")
                record["val_loss"] = res["loss"]
                record.update({f"val_{m}": res[m] for m in metrics})
            record["seconds"] = time.perf_counter() - t0
            record["samples_per_s"] = samples / train_time if train_time > 0 else float("inf")
            record["tokens_per_s"] = (tokens / train_time if train_time > 0 else float("inf")
                                      ) if seq else None
            history.append(record)
            extra = {k: v for k, v in record.items() if k.startswith("val_")}
            bar.end(record, _postfix(record["train_loss"], record["samples_per_s"],
                                     record["tokens_per_s"], extra))
            if log is not None:
                if hasattr(log, "write"):
                    log.write(json.dumps(record) + "\n")
                    if hasattr(log, "flush"):
                        log.flush()
                else:
                    log(dict(record))
    finally:
        bar.close()
        if was_training is not None:
            _set_mode(model, was_training)
    return history
