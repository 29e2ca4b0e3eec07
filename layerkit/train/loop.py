"""The training loop :func:`fit`."""

from __future__ import annotations

import json
import math
import time

import numpy as np

from ..data.batching import batches
from ..optim import clip_grad_norm
from ..validation import flag, has_methods, integer, number_in, positive_int
from .history import History
from .metrics import (LossMean, check_data, check_metrics, evaluate_data, is_arrays,
                      is_sequence_target, output_of, reset_state, set_mode)
from .progress import Progress, epoch_summary


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
        Show progress on stderr (:mod:`layerkit.train.progress`): per epoch a short bar with the
        running loss (tqdm's, when the optional package is installed; else the epoch's label),
        then the epoch's metrics on a line of their own, wrapped at the terminal's width.
        False: silent.
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
    epochs, batch_size, metrics, clip_norm, seed, shuffle, progress = check_fit_args(
        who, model, loss, optimizer, train_data, val_data, epochs=epochs, batch_size=batch_size,
        metrics=metrics, clip_norm=clip_norm, seed=seed, shuffle=shuffle, progress=progress,
        log=log)
    trainer = _Trainer(who, model, loss, optimizer, clip_norm)
    next_data = _epoch_data(train_data, batch_size, shuffle, seed)
    history, was_training = History(), getattr(model, "training", None)
    bar = Progress(progress)
    try:
        for epoch in range(1, epochs + 1):
            totals = trainer.epoch(epoch, epochs, next_data, bar)
            val = _validate(who, model, loss, val_data, epoch, batch_size, metrics)
            history.append(_publish(totals.record(epoch, val), epochs, bar, log))
    finally:
        bar.close()
        if was_training is not None:
            set_mode(model, was_training)
    return history


def check_fit_args(who, model, loss, optimizer, train_data, val_data, *, epochs, batch_size,
                   metrics, clip_norm, seed, shuffle, progress, log) -> tuple:
    """Check :func:`fit`'s arguments, before any training; return them normalised as
    ``(epochs, batch_size, metrics, clip_norm, seed, shuffle, progress)``."""
    epochs = positive_int(who, "epochs", epochs)
    check_data(who, "train_data", train_data)
    if val_data is not None:
        check_data(who, "val_data", val_data)
    if is_arrays(train_data) or is_arrays(val_data):
        if batch_size is None:
            raise ValueError(f"{who}: batch_size is required when the data are (x, y) arrays, "
                             f"got None")
        batch_size = positive_int(who, "batch_size", batch_size)
    metrics = check_metrics(who, metrics)
    if clip_norm is not None:
        clip_norm = number_in(who, "clip_norm", clip_norm, 0.0, math.inf, low_open=True)
    seed = integer(who, "seed", seed)
    shuffle = flag(who, "shuffle", shuffle)
    progress = flag(who, "progress", progress)
    if log is not None and not (callable(log) or hasattr(log, "write")):
        raise TypeError(f"{who}: log must be a callable or a writable file, "
                        f"got {type(log).__name__}")
    has_methods(who, "model", model, ("forward", "backward"))
    has_methods(who, "loss", loss, ("forward", "backward"))
    has_methods(who, "optimizer", optimizer, ("zero_grad", "step"))
    return epochs, batch_size, metrics, clip_norm, seed, shuffle, progress


def _epoch_data(train_data, batch_size, shuffle: bool, seed: int):
    """``epoch -> iterable of (xb, yb)``: one :func:`batches` over (x, y) arrays (a new order
    every epoch, drawn from ``seed``), or the caller's callable itself."""
    if not is_arrays(train_data):
        return train_data
    train_iter = batches(train_data[0], train_data[1], batch_size, shuffle=shuffle, seed=seed)
    return lambda epoch: train_iter


class _EpochTotals:
    """Running totals of one training epoch: the loss mean, samples, tokens (integer sequence
    targets only) and the time from the epoch's start ``t0`` to the end of the last step."""

    def __init__(self, loss, t0: float):
        self.mean, self.t0 = LossMean(loss), t0
        self.samples = self.tokens = 0
        self.train_time = 0.0
        self.seq = False

    def add(self, value: float, out, xb, yb) -> None:
        self.train_time = time.perf_counter() - self.t0
        self.mean.add(value, out)
        self.samples += len(xb)
        if is_sequence_target(yb):
            self.seq = True
            self.tokens += yb.size

    def samples_per_s(self) -> float:
        return self.samples / self.train_time if self.train_time > 0 else float("inf")

    def record(self, epoch: int, val: dict) -> dict:
        """The History record of the epoch; ``seconds`` includes the validation ``val``."""
        record = {"epoch": epoch, "train_loss": self.mean.value, **val}
        record["seconds"] = time.perf_counter() - self.t0
        record["samples_per_s"] = self.samples_per_s()
        record["tokens_per_s"] = (self.tokens / self.train_time if self.train_time > 0
                                  else float("inf")) if self.seq else None
        return record


class _Trainer:
    """fit's training steps: the model, loss, optimizer and gradient clipping of one run."""

    def __init__(self, who: str, model, loss, optimizer, clip_norm):
        self.who, self.model, self.loss, self.optimizer = who, model, loss, optimizer
        self.clip_norm = clip_norm

    def step(self, xb, yb, where: str):
        """One update on the batch (xb, yb); returns (loss value, model output). Raises
        FloatingPointError naming ``where`` on a non-finite output, loss or gradient norm."""
        who, model = self.who, self.model
        set_mode(model, True)
        self.optimizer.zero_grad()
        out = output_of(model.forward(xb))
        if not np.all(np.isfinite(out)):
            raise FloatingPointError(f"{who}: the model output contains NaN or infinity "
                                     f"at {where}; lower the learning rate or set "
                                     f"clip_norm")
        value = self.loss.forward(out, yb)
        if not math.isfinite(value):
            raise FloatingPointError(f"{who}: the loss is {value} at {where}")
        model.backward(self.loss.backward())
        if self.clip_norm is not None:
            norm = clip_grad_norm(model, self.clip_norm)
            if not math.isfinite(norm):
                raise FloatingPointError(f"{who}: the gradient norm is {norm} at {where}")
        self.optimizer.step()
        return value, out

    def epoch(self, epoch: int, epochs: int, next_data, bar) -> _EpochTotals:
        """One pass over ``next_data(epoch)`` after ``reset_state()``, shown on ``bar``."""
        totals = _EpochTotals(self.loss, time.perf_counter())
        reset_state(self.model)
        data = next_data(epoch)
        bar.start(f"epoch {epoch}/{epochs}", len(data) if hasattr(data, "__len__") else None)
        step = 0
        for step, (xb, yb) in enumerate(data, start=1):
            value, out = self.step(xb, yb, f"epoch {epoch}, step {step}")
            totals.add(value, out, xb, yb)
            bar.step(totals.mean.value)
        if step == 0:
            raise ValueError(f"{self.who}: train_data yielded no batches in epoch {epoch}")
        return totals


def _validate(who, model, loss, val_data, epoch, batch_size, metrics) -> dict:
    """``{"val_loss": ..., "val_<metric>": ...}`` on ``val_data`` after an epoch; ``{}``
    without validation data."""
    if val_data is None:
        return {}
    res = evaluate_data(who, model, loss, val_data, epoch=epoch, batch_size=batch_size,
                        metrics=metrics, where=f"validation after epoch {epoch}")
    return {"val_loss": res["loss"], **{f"val_{m}": res[m] for m in metrics}}


def _publish(record: dict, epochs: int, bar, log) -> dict:
    """End the epoch on the progress bar with its metrics line and pass ``record`` to ``log``;
    returns ``record``."""
    bar.end(epoch_summary(record, epochs))
    if log is None:
        return record
    if hasattr(log, "write"):
        log.write(json.dumps(record) + "\n")
        if hasattr(log, "flush"):
            log.flush()
    else:
        log(dict(record))
    return record
