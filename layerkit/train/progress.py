"""Progress display of training, Keras-style, readable at 80 columns: one short bar per epoch
(or per range of steps), then that epoch's metrics on a line of their own, on stderr.

The bar is tqdm's when tqdm is installed (a fixed-width bar, the step count, elapsed and
remaining time, the running loss); without tqdm, the epoch's label is printed when it starts.
The metrics line is wrapped at the terminal's width (``COLUMNS``), between metrics, never
inside one.
"""

from __future__ import annotations

import shutil
import sys

from .history import format_value

BAR_FORMAT = "{desc} {bar:20} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}"
BAR_FORMAT_UNSIZED = "{desc} {n_fmt} steps [{elapsed}]{postfix}"
_NOT_SHOWN = ("epoch", "seconds", "samples_per_s", "tokens_per_s")


def _import_tqdm():
    """``tqdm.tqdm`` if the optional package is installed, else None."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def rate(n: float) -> str:
    """A throughput for people: ``"912"``, ``"27.4k"``."""
    return f"{n / 1e3:.1f}k" if n >= 1e4 else f"{n:.0f}"


def wrap_items(head: str, items: list, width: int | None = None) -> str:
    """``head`` followed by ``items`` separated by two spaces, broken into lines of at most
    ``width`` characters (default: the terminal's width) between items; continuation lines are
    indented by two spaces."""
    width = width or shutil.get_terminal_size((80, 24)).columns
    lines, line = [], head
    for item in items:
        if len(line) + 2 + len(item) > width and line.strip():
            lines.append(line)
            line = "  " + item
        else:
            line = f"{line}  {item}" if line else item
    lines.append(line)
    return "\n".join(lines)


def epoch_summary(record: dict, epochs: int, width: int | None = None) -> str:
    """The metrics line of one :func:`fit` record: ``epoch 3/20  train_loss 0.2104  val_loss
    0.1873  val_accuracy 0.9460  1027 samples/s  4.12 s``."""
    items = [f"{k} {format_value(v)}" for k, v in record.items()
             if k not in _NOT_SHOWN and v is not None]
    if record.get("tokens_per_s") is not None:
        items.append(f"{rate(record['tokens_per_s'])} tokens/s")
    elif record.get("samples_per_s") is not None:
        items.append(f"{rate(record['samples_per_s'])} samples/s")
    items.append(f"{record['seconds']:.2f} s")
    return wrap_items(f"epoch {record['epoch']}/{epochs}", items, width)


class Progress:
    """A bar per epoch or step range and a metrics line after it on ``file`` (stderr), or
    nothing when disabled.

    ``start(label, total)`` opens a bar of ``total`` steps (None: unknown), ``step(loss)``
    advances it and shows the running loss, ``end(summary)`` closes it (its final state stays
    on screen once) and prints ``summary`` below it.
    """

    def __init__(self, enabled: bool, *, file=None):
        self.enabled = bool(enabled)
        self.file = file
        self.tqdm = _import_tqdm() if self.enabled else None
        self.bar = None

    def _out(self):
        return self.file if self.file is not None else sys.stderr

    def start(self, label: str, total) -> None:
        if not self.enabled:
            return
        if self.tqdm is None:
            print(label + (f": {total} steps" if total else ""), file=self._out(), flush=True)
            return
        self.bar = self.tqdm(total=total, desc=label, file=self._out(), leave=True,
                             mininterval=0.2, dynamic_ncols=False,
                             bar_format=BAR_FORMAT if total else BAR_FORMAT_UNSIZED)

    def start_range(self, step: int, steps: int, every: int) -> None:
        """At the first step of each range of ``every`` steps (1, every + 1, ...), open a bar
        ``"steps a-b/steps"`` for that range."""
        if (step - 1) % every == 0:
            last = min(step + every - 1, steps)
            self.start(f"steps {step}-{last}/{steps}", last - step + 1)

    def step(self, loss: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
            self.bar.update(1)

    def end(self, summary: str) -> None:
        if not self.enabled:
            return
        self.close()
        print(summary, file=self._out(), flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
