"""A training run counted in steps (a fresh batch each step), with a held-out evaluation and a
progress bar every ``eval_every`` steps."""

from __future__ import annotations

import math
import time

from .progress import Progress, wrap_items

__all__ = ["train_steps"]


def train_steps(who: str, model, opt, steps: int, eval_every: int, step_loss, evaluate,
                shown, *, lr: float, schedule=None, clip=None, progress: bool = True):
    """Run ``steps`` optimizer steps and evaluate every ``eval_every`` steps and at the end.

    Step s: ``opt.lr = lr · schedule(s, steps)`` (constant without a schedule), ``model.train()``,
    ``zero_grad``, ``value = step_loss(s)`` (forward, loss and backward of a fresh batch; returns
    the loss), ``clip(model)`` if given, ``opt.step()``. An evaluation runs ``model.eval()``,
    ``scores = evaluate()`` and prints ``shown(scores)`` (a list of "name value" items) under the
    bar. A non-finite loss raises FloatingPointError naming ``who`` and the step.

    Returns
    -------
    history : list of dict
        One record per evaluation: step, loss, the scores, seconds since the start.
    seconds : float
        Wall time of the whole run.
    """
    history, bar = [], Progress(progress)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        bar.start_range(step, steps, eval_every)   # one bar per range of eval_every steps
        opt.lr = lr * (schedule(step, steps) if schedule is not None else 1.0)
        model.train()
        opt.zero_grad()
        value = step_loss(step)
        if not math.isfinite(value):
            raise FloatingPointError(f"{who}: the loss is {value} at step {step}")
        if clip is not None:
            clip(model)
        opt.step()
        bar.step(value)
        if step % eval_every == 0 or step == steps:
            model.eval()
            scores = evaluate()
            elapsed = time.perf_counter() - t0
            history.append({"step": step, "loss": value, **scores, "seconds": elapsed})
            bar.end(wrap_items(f"step {step}/{steps}",
                               [f"loss {value:.4f}", *shown(scores), f"{elapsed:.0f} s"]))
    bar.close()
    return history, time.perf_counter() - t0
