"""Progress display of the fit loop: a tqdm bar when tqdm is installed, else one line per epoch."""

from __future__ import annotations

import sys

from .history import format_value


def _import_tqdm():
    """``tqdm.tqdm`` if the optional package is installed, else None."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def _rate(n: float) -> str:
    return f"{n / 1e3:.1f}k" if n >= 1e4 else f"{n:.0f}"


def postfix(loss_value: float, samples_per_s: float, tokens_per_s, extra: dict) -> dict:
    post = {"loss": f"{loss_value:.4f}"}
    post.update({k: f"{v:.4f}" for k, v in extra.items()})
    if tokens_per_s is not None:
        post["tok/s"] = _rate(tokens_per_s)
    else:
        post["samples/s"] = _rate(samples_per_s)
    return post


class Progress:
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
            parts = [f"{k} {format_value(v)}" for k, v in record.items()
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
