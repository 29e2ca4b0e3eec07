"""Sampling and greedy decoding, layerkit against the same loop in PyTorch (CPU, float32).

    python benchmarks/sampling.py              # the two comparisons and the fused kernel's crossover
    python benchmarks/sampling.py --quick      # small sizes, few repeats (a smoke run)

- ``CharLSTM.sample`` of 300 characters at batch 1 (V = 76, E = 64, H = 256: the char-lstm
  recipe's model) against Embedding -> LSTMCell -> Linear -> softmax -> torch.multinomial under
  ``torch.no_grad()``, one character at a time: milliseconds per character.
- ``Seq2Seq.greedy_decode`` (13 ids, E = 32, H = 128: the seq2seq recipe's model) of 8-id
  sources, up to 9 output steps, at batch 1 and 128, against nn.LSTM over the source and an
  LSTMCell loop with arg max, both with the same weights (they decode the same ids): sequences
  per second.
- The crossover of :func:`layerkit.kernels.recurrent_step.fused_step_pays`: one LSTM step by the
  fused kernel and by the numpy path (products + the forward's gate kernel) at growing batch.

One process, numpy imported first, then torch, then layerkit (the order users import them in);
the two libraries alternate (benchmarks/timing.py), medians of the repeats. ``run.py`` registers
the two comparisons as its "sample" rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import layerkit as lk  # noqa: E402
from timing import paired_median_ms  # noqa: E402

CHAR = dict(vocab=76, emb=64, hidden=256)
SEQ = dict(vocab=13, emb=32, hidden=128, src_len=8, max_len=9)


def sample_layerkit(length: int):
    """``CharLSTM.sample(length)`` at batch 1 (a fresh seed per call, as a user would)."""
    model = lk.models.char_lstm(CHAR["vocab"], embedding_dim=CHAR["emb"],
                                hidden_size=CHAR["hidden"], seed=0)
    seeds = iter(range(10 ** 9))
    return lambda: model.sample(length, seed=next(seeds))


def sample_torch(length: int):
    """The same loop in PyTorch: one LSTMCell step, the head, softmax and a multinomial draw
    per character."""
    from torch import nn
    torch.manual_seed(0)
    emb, cell = nn.Embedding(CHAR["vocab"], CHAR["emb"]), nn.LSTMCell(CHAR["emb"], CHAR["hidden"])
    head = nn.Linear(CHAR["hidden"], CHAR["vocab"])

    def run():
        with torch.no_grad():
            x = torch.zeros(1, dtype=torch.long)
            h = c = torch.zeros(1, CHAR["hidden"])
            out = []
            for _ in range(length):
                h, c = cell(emb(x), (h, c))
                p = torch.softmax(head(h), dim=-1)
                x = torch.multinomial(p, 1)[:, 0]
                out.append(x)
            return torch.cat(out)
    return run


def _sources(batch: int):
    rng = np.random.default_rng(0)
    return rng.integers(3, SEQ["vocab"], size=(batch, SEQ["src_len"]))


def _seq2seq():
    return lk.models.Seq2Seq(SEQ["vocab"], SEQ["vocab"], embedding_dim=SEQ["emb"],
                             hidden_size=SEQ["hidden"], seed=0)


def greedy_layerkit(batch: int):
    model, src = _seq2seq(), _sources(batch)
    return lambda: model.greedy_decode(src, SEQ["max_len"], bos=1, eos=2)


def greedy_torch(batch: int):
    """nn.LSTM over the sources, then an LSTMCell loop feeding back the arg max, stopping once
    every row has produced EOS (as greedy_decode does), with the layerkit model's weights (so
    both decode the same ids and run the same number of steps)."""
    from torch import nn
    model = _seq2seq()
    V, E, H = SEQ["vocab"], SEQ["emb"], SEQ["hidden"]
    src_emb, encoder = nn.Embedding(V, E), nn.LSTM(E, H, batch_first=True)
    tgt_emb, decoder, head = nn.Embedding(V, E), nn.LSTMCell(E, H), nn.Linear(H, V)
    with torch.no_grad():
        src_emb.weight.copy_(torch.from_numpy(model.src_embedding.params["weight"]))
        tgt_emb.weight.copy_(torch.from_numpy(model.tgt_embedding.params["weight"]))
        for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(encoder, key + "_l0").copy_(torch.from_numpy(model.encoder.params[key]))
            getattr(decoder, key).copy_(torch.from_numpy(model.decoder.params[key]))
        head.weight.copy_(torch.from_numpy(model.head.params["weight"]))
        head.bias.copy_(torch.from_numpy(model.head.params["bias"]))
    src = torch.from_numpy(_sources(batch))

    def run():
        with torch.no_grad():
            _, (h, c) = encoder(src_emb(src))
            h, c = h[0], c[0]
            tok = torch.full((batch,), 1, dtype=torch.long)
            done = torch.zeros(batch, dtype=torch.bool)
            out = torch.zeros(batch, SEQ["max_len"], dtype=torch.long)
            for t in range(SEQ["max_len"]):
                h, c = decoder(tgt_emb(tok), (h, c))
                tok = head(h).argmax(dim=-1)
                out[~done, t] = tok[~done]
                done |= tok == 2
                if bool(done.all()):
                    break
            return out.numpy()
    return run


def same_decodes(batch: int) -> bool:
    """The two loops decode the same ids (so they time the same work)."""
    return bool(np.array_equal(greedy_layerkit(batch)(), greedy_torch(batch)()))


def crossover(batches, repeat: int) -> list[tuple[str, int, float, float]]:
    """(size, N, fused µs, numpy-path µs) of one LSTM step of the char-LSTM's and the Seq2Seq
    decoder's sizes."""
    rng = np.random.default_rng(0)
    rows = []
    for d, hidden in ((CHAR["emb"], CHAR["hidden"]), (SEQ["emb"], SEQ["hidden"])):
        cell = lk.LSTM(d, hidden, seed=0).cell()
        for n in batches:
            x = rng.standard_normal((n, d)).astype(np.float32)
            h = rng.standard_normal((n, hidden)).astype(np.float32)
            c = h.copy()
            fused = lambda: cell._fused(x, h, c, np.empty_like(h))      # noqa: E731
            plain = lambda: cell._numpy(x, h, c, np.empty_like(h))      # noqa: E731
            f_ms, p_ms = paired_median_ms(fused, plain, repeat=repeat)
            rows.append((f"E={d} H={hidden}", n, 1e3 * f_ms, 1e3 * p_ms))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    ap.add_argument("--repeat", type=int, default=None, help="samples per library (default 15)")
    args = ap.parse_args(argv)
    repeat = args.repeat or (2 if args.quick else 15)
    length = 20 if args.quick else 300
    lk_ms, t_ms = paired_median_ms(sample_layerkit(length), sample_torch(length), repeat=repeat)
    print(f"CharLSTM.sample {length} chars, batch 1: layerkit {1e3 * lk_ms / length:7.1f} µs/char,"
          f" torch {1e3 * t_ms / length:7.1f} µs/char, ratio {lk_ms / t_ms:.2f}")
    for batch in (1, 128):
        if not same_decodes(batch):
            print(f"warning: greedy_decode batch {batch}: layerkit and torch decode different ids")
        lk_ms, t_ms = paired_median_ms(greedy_layerkit(batch), greedy_torch(batch), repeat=repeat)
        print(f"Seq2Seq.greedy_decode batch {batch:3}: layerkit {batch / lk_ms * 1e3:9.0f} seq/s, "
              f"torch {batch / t_ms * 1e3:9.0f} seq/s, ratio (time) {lk_ms / t_ms:.2f}")
    batches = (1, 2, 4) if args.quick else (1, 2, 4, 8, 12, 16, 24, 32, 64)
    print("one LSTM step, fused kernel vs numpy path (products + gate kernel):")
    for size, n, f_us, p_us in crossover(batches, repeat):
        print(f"  {size} N={n:3}: fused {f_us:8.1f} µs, numpy {p_us:8.1f} µs, "
              f"ratio {f_us / p_us:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
