"""The per-epoch records of :func:`layerkit.train.fit` and how numbers are shown in them."""

from __future__ import annotations

import json
import math


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
        rows = [[format_value(r.get(k)) for k in keys] for r in self]
        widths = [max(len(k), *(len(row[j]) for row in rows)) for j, k in enumerate(keys)]
        lines = ["  ".join(k.rjust(w) for k, w in zip(keys, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"History({list.__repr__(self)})"


def format_value(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1e4:
            return f"{v:.0f}" if math.isfinite(v) else str(v)
        return f"{v:.4g}" if v != 0 and abs(v) < 1e-3 else f"{v:.4f}"
    return str(v)
