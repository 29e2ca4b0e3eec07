"""The training loop :func:`fit`."""

from __future__ import annotations

import json
import math
import numbers
import time

import numpy as np

from ..data.batching import batches
from ..optim import clip_grad_norm
from ..validation import number_in, positive_int
from .history import History
from .metrics import (LossMean, check_data, check_metrics, evaluate_data, is_arrays,
                      is_sequence_target, output_of, reset_state, set_mode)
from .progress import Progress, postfix


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

    train_iter = (batches(train_data[0], train_data[1], batch_size, shuffle=bool(shuffle),
                           seed=int(seed)) if is_arrays(train_data) else None)
    history = History()
    was_training = getattr(model, "training", None)
    bar = Progress(bool(progress), epochs)
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            reset_state(model)
            data = train_iter if train_iter is not None else train_data(epoch)
            total = len(data) if hasattr(data, "__len__") else None
            bar.start(epoch, total)
            mean = LossMean(loss)
            samples = tokens = 0
            train_time = 0.0
            seq = False
            step = 0
            for step, (xb, yb) in enumerate(data, start=1):
                where = f"epoch {epoch}, step {step}"
                set_mode(model, True)
                optimizer.zero_grad()
                out = output_of(model.forward(xb))
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
                if is_sequence_target(yb):
                    seq = True
                    tokens += yb.size
                sps = samples / train_time if train_time > 0 else float("inf")
                tps = tokens / train_time if seq and train_time > 0 else None
                bar.step(postfix(mean.value, sps, tps, {}))
            if step == 0:
                raise ValueError(f"{who}: train_data yielded no batches in epoch {epoch}")
            record = {"epoch": epoch, "train_loss": mean.value}
            if val_data is not None:
                res = evaluate_data(who, model, loss, val_data, epoch=epoch, batch_size=batch_size,
                                metrics=metrics, where=f"validation after epoch {epoch}")
                record["val_loss"] = res["loss"]
                record.update({f"val_{m}": res[m] for m in metrics})
            record["seconds"] = time.perf_counter() - t0
            record["samples_per_s"] = samples / train_time if train_time > 0 else float("inf")
            record["tokens_per_s"] = (tokens / train_time if train_time > 0 else float("inf")
                                      ) if seq else None
            history.append(record)
            extra = {k: v for k, v in record.items() if k.startswith("val_")}
            bar.end(record, postfix(record["train_loss"], record["samples_per_s"],
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
            set_mode(model, was_training)
    return history
