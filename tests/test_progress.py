"""Training output as a person sees it at 80 columns: a short bar per epoch, then the epoch's
metrics on their own line(s), every metric on screen, no line twice."""

import sys

import numpy as np
import pytest

import layerkit as lk
from layerkit.train.history import format_value
from layerkit.train.progress import wrap_items


def screen(stream_text: str) -> list:
    """What a terminal shows after ``stream_text``: ``\\r`` moves the cursor to column 0 and
    later characters overwrite earlier ones; ``\\n`` starts a new line."""
    lines = []
    for raw in stream_text.split("\n"):
        cells, col = [], 0
        for ch in raw:
            if ch == "\r":
                col = 0
                continue
            if col < len(cells):
                cells[col] = ch
            else:
                cells.append(ch)
            col += 1
        lines.append("".join(cells).rstrip())
    return [line for line in lines if line]


def _blobs(n=40):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    x = np.eye(4, dtype=np.float32)[y] * 3 + 0.5 * rng.standard_normal((n, 4)).astype(np.float32)
    return x, y.astype(np.int64)


def _fit_one_epoch(capsys, epochs=1):
    x, y = _blobs()
    net = lk.Sequential(lk.Linear(4, 8, seed=0), lk.Tanh(), lk.Linear(8, 3, seed=1))
    history = lk.train.fit(net, lk.CrossEntropy(), lk.Adam(net, lr=1e-2), (x, y),
                           epochs=epochs, batch_size=8, val_data=(x, y), progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    return history, screen(err)


def _check_screen(history, lines, epochs):
    assert all(len(line) <= 80 for line in lines), [l for l in lines if len(l) > 80]
    assert len(lines) == len(set(lines)), lines                    # no line twice
    text = "\n".join(lines)
    for record in history:
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert f"{key} {format_value(record[key])}" in text, (key, text)
        assert f"epoch {record['epoch']}/{epochs}" in text
    assert "samples/s" in text


def test_one_epoch_at_80_columns_with_tqdm(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setenv("COLUMNS", "80")
    history, lines = _fit_one_epoch(capsys)
    _check_screen(history, lines, 1)
    bars = [line for line in lines if "5/5" in line]
    assert len(bars) == 1 and f"loss {history[0]['train_loss']:.4f}" in bars[0], lines
    assert lines.index(bars[0]) < lines.index(next(l for l in lines if "val_loss" in l))


def test_each_epoch_has_one_bar_then_its_metrics(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setenv("COLUMNS", "80")
    history, lines = _fit_one_epoch(capsys, epochs=3)
    _check_screen(history, lines, 3)
    starts = [i for i, line in enumerate(lines) if line.startswith("epoch ") and "5/5" in line]
    assert len(starts) == 3


def test_without_tqdm_the_label_then_the_metrics(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)        # `import tqdm` raises ImportError
    monkeypatch.setenv("COLUMNS", "80")
    history, lines = _fit_one_epoch(capsys, epochs=2)
    _check_screen(history, lines, 2)
    assert lines[0] == "epoch 1/2: 5 steps" and lines[1].startswith("epoch 1/2  train_loss ")


def test_narrow_terminal_wraps_between_metrics(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setenv("COLUMNS", "40")
    history, lines = _fit_one_epoch(capsys)
    assert all(len(line) <= 40 for line in lines), lines
    assert any(line.strip() == f"val_accuracy {format_value(history[0]['val_accuracy'])}"
               or f"val_accuracy {format_value(history[0]['val_accuracy'])}" in line
               for line in lines)


def test_wrap_items_breaks_only_between_items():
    text = wrap_items("epoch 1/9", ["alpha 1.0000", "beta 2.0000", "gamma 3.0000"], width=28)
    assert text.splitlines() == ["epoch 1/9  alpha 1.0000", "  beta 2.0000  gamma 3.0000"]
    assert wrap_items("e", ["a" * 30], width=10) == "e\n  " + "a" * 30   # a long item stays whole



def test_seq2seq_shows_a_bar_per_range_of_steps(tmp_path, capsys, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setenv("COLUMNS", "80")
    from layerkit.train.recipes import seq2seq
    result = seq2seq(steps=5, eval_every=2, batch_size=8, hidden_size=8, embedding_dim=4,
                     max_len=2, out=str(tmp_path / "s.npz"))
    lines = screen(capsys.readouterr().err)
    assert all(len(line) <= 80 for line in lines) and len(lines) == len(set(lines)), lines
    bars = [line for line in lines if line.startswith("steps ")]
    assert [b.split()[1] for b in bars] == ["1-2/5", "3-4/5", "5-5/5"], lines
    summaries = [line for line in lines if line.startswith("step ")]
    assert [s.split()[1] for s in summaries] == ["2/5", "4/5", "5/5"]
    last = result.history[-1]
    assert f"loss {last['loss']:.4f}" in summaries[-1]
    assert f"accuracy {last['accuracy']:.2%}" in summaries[-1]
    assert lines.index(bars[1]) == lines.index(summaries[0]) + 1    # bar, its metrics, next bar
