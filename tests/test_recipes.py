"""`layerkit train` and `layerkit sample` as a user runs them, on quick settings: each recipe
trains, learns (far above chance or below a stated bound), writes a checkpoint that loads, and
sampling is deterministic with a seed. The full-length runs and their targets are measured by
benchmarks/train_vs_torch.py, not here."""

import math
import os

import numpy as np
import pytest

import layerkit as lk
from layerkit.checkpoint import load
from layerkit.cli import main

from helpers import compiled, needs_data



@needs_data
def test_ngram_recipe_and_sampling(tmp_path, capsys):
    out = str(tmp_path / "ngram.npz")
    assert main(["train", "ngram", "--n", "3", "--out", out, "--quiet"]) == 0
    summary = capsys.readouterr().out
    assert "3-gram: valid_perplexity" in summary and out in summary
    model = load(out)
    assert 5 < model.meta["metrics"]["valid_perplexity"] < 12      # 76 characters: far below 76
    texts = []
    for seed in (1, 1, 2):
        assert main(["sample", out, "--prompt", "ROMEO:", "--length", "80", "--seed", str(seed)]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] != texts[2]
    assert texts[0].startswith("ROMEO:") and len(texts[0]) == len("ROMEO:") + 80 + 1


@needs_data
@compiled
def test_lenet_recipe_learns(tmp_path, capsys):
    out = str(tmp_path / "lenet.npz")
    assert main(["train", "lenet", "--epochs", "2", "--limit", "400", "--out", out,
                 "--quiet"]) == 0
    assert "lenet5: test_accuracy" in capsys.readouterr().out
    meta = load(out).meta
    assert meta["metrics"]["test_accuracy"] > 0.5                    # chance: 0.1
    assert len(meta["history"]) == 2


@needs_data
def test_char_lstm_recipe_runs_end_to_end(tmp_path, capsys):
    out = str(tmp_path / "lm.npz")
    assert main(["train", "char-lstm", "--max-chars", "6000", "--batch-size", "4",
                 "--seq-len", "25", "--hidden-size", "32", "--lr", "0.01", "--out", out,
                 "--quiet"]) == 0
    model = load(out)
    metrics = model.meta["metrics"]
    assert metrics["valid_perplexity"] < 30             # uniform over 76 characters: 76
    assert 1 < metrics["cold_start_perplexity"] < 76
    assert model.state_resets == 0.1
    assert main(["sample", out, "--prompt", "KING", "--length", "30", "--seed", "3",
                 "--temperature", "0.5", "--top-k", "5"]) == 0
    first = capsys.readouterr().out
    assert main(["sample", out, "--prompt", "KING", "--length", "30", "--seed", "3",
                 "--temperature", "0.5", "--top-k", "5"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == first.splitlines()[-1]


@compiled
def test_seq2seq_recipe_learns(tmp_path, capsys):
    out = str(tmp_path / "s2s.npz")
    assert main(["train", "seq2seq", "--steps", "150", "--max-len", "3", "--batch-size", "64",
                 "--out", out, "--quiet"]) == 0
    acc = load(out).meta["metrics"]["exact_sequence_accuracy"]
    assert acc > 0.5          # 1-3 digit strings: chance of a whole string is below 0.1


def test_train_and_sample_usage_errors(tmp_path, capsys):
    assert main(["train", "lenet", "--steps", "3"]) == 2
    assert "--steps does not apply here" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "missing.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    out = str(tmp_path / "s2s.npz")
    assert main(["train", "seq2seq", "--steps", "2", "--max-len", "2", "--out", out,
                 "--quiet"]) == 0
    assert main(["sample", out]) == 2
    assert "not a language model" in capsys.readouterr().err


def test_linear_decay_schedule():
    from layerkit.train.recipes import linear_decay
    factors = [linear_decay(step, 100) for step in range(1, 101)]
    assert factors[:50] == [1.0] * 50                      # constant for the first half
    assert factors[-1] == pytest.approx(0.1)               # lr/10 at the last step
    assert all(a > b for a, b in zip(factors[49:], factors[50:]))   # then strictly decreasing
    assert factors[74] == pytest.approx(1.0 - 0.9 * 25 / 50)


@pytest.mark.parametrize("argv, message", [
    (["seq2seq", "--steps", "0"], "seq2seq: steps must be a positive integer, got 0"),
    (["seq2seq", "--steps", "-1"], "seq2seq: steps must be a positive integer, got -1"),
    (["seq2seq", "--task", "rotate"], "seq2seq: task must be one of"),
    (["seq2seq", "--eval-every", "0"], "seq2seq: eval_every must be a positive integer"),
    (["lenet", "--epochs", "0"], "lenet: epochs must be a positive integer, got 0"),
    (["lenet", "--lr", "-0.1"], "lenet: lr must be in (0.0, inf), got -0.1"),
    (["lenet", "--limit", "0"], "lenet: limit must be a positive integer"),
    (["char-lstm", "--seq-len", "0"], "char-lstm: seq_len must be a positive integer"),
    (["char-lstm", "--clip", "nan"], "char-lstm: clip must be in (0.0, inf)"),
    (["char-lstm", "--state-resets", "1.5"], "char-lstm: state_resets must be in [0.0, 1.0]"),
    (["dcgan", "--real-label", "0.5"], "dcgan: real_label must be in (0.5, 1.0], got 0.5"),
    (["dcgan", "--features", "0"], "dcgan: features must be a positive integer"),
    (["ngram", "--k", "0"], "ngram: k must be in (0.0, inf), got 0.0"),
    (["ngram", "--seed", "1"], "--seed does not apply here"),
    (["lenet", "--seed", "-3"], "lenet: seed must be a non-negative integer, got -3"),
    (["lenet", "--out", "no/such/folder/x.npz"], "out must be a file in an existing folder"),
])
def test_every_option_is_checked_before_any_data_or_training(argv, message, monkeypatch,
                                                              capsys):
    from layerkit import data
    for loader in ("load_mnist5k", "load_shakespeare"):
        monkeypatch.setattr(data, loader, lambda *a, **k: pytest.fail("data loaded"))
    monkeypatch.setattr("layerkit.data.seq2seq_digits",
                        lambda *a, **k: pytest.fail("seq2seq data made"))
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"layerkit train {argv[0]}: ") and message in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("recipe", ["lenet", "char-lstm", "ngram", "seq2seq"])
def test_recipe_help_lists_its_own_options_with_defaults(recipe, capsys):
    import inspect
    from layerkit.train.recipes import RECIPES
    with pytest.raises(SystemExit) as e:
        main(["train", recipe, "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())        # argparse wraps the lines
    params = inspect.signature(RECIPES[recipe]).parameters
    for name, p in params.items():
        if name == "progress":
            continue
        default = "all" if p.default is None else p.default
        assert f"--{name.replace('_', '-')}" in text, name
        assert f"(default: {default})" in text, (name, default)
    others = {"--steps", "--epochs", "--limit", "--n", "--task", "--max-chars"} - {
        "--" + n.replace("_", "-") for n in params}
    assert not [o for o in others if f"{o} " in text]


def test_sample_of_a_file_that_is_no_checkpoint(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("ROMEO: hello\n")
    assert main(["sample", str(text)]) == 2
    err = capsys.readouterr().err
    assert "is not a layerkit checkpoint (not an .npz archive)" in err
    assert "pickle" not in err


def test_checkpoints_get_the_mode_of_the_umask(tmp_path):
    import layerkit as lk
    old = os.umask(0o027)
    try:
        lk.checkpoint.save(lk.models.lenet5(), tmp_path / "a.npz")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o640


def test_lenet_data_option_is_checked(capsys):
    assert main(["train", "lenet", "--data", "cifar"]) == 2
    assert "data must be one of" in capsys.readouterr().err


def test_cold_start_perplexity_is_the_per_window_perplexity_from_a_zero_state():
    """Reference: a plain loop over the windows, each a stateless forward from zeros, the
    softmax written out here."""
    from layerkit.train.recipes import cold_start_perplexity
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 7, 53)
    lm = lk.models.char_lstm(7, embedding_dim=3, hidden_size=5, dtype=np.float64, seed=1)
    lm(ids[None, :9])                       # a carried training state that must not be used
    first10, whole = cold_start_perplexity(lm, ids, window=12, first=4, batch_size=3)
    ref = lk.models.char_lstm(7, embedding_dim=3, hidden_size=5, stateful=False,
                              dtype=np.float64, seed=1)
    nll = []
    for k in range(4):                      # (53 - 1) // 12 = 4 windows
        z = ref(ids[None, 12 * k:12 * k + 12])[0]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        nll.append(-np.log(p[np.arange(12), ids[12 * k + 1:12 * k + 13]]))
    nll = np.array(nll)
    assert math.isclose(first10, math.exp(nll[:, :4].mean()), rel_tol=1e-12)
    assert math.isclose(whole, math.exp(nll.mean()), rel_tol=1e-12)
    assert not lm.training and lm.state is None
    with pytest.raises(ValueError, match="more than 12 ids"):
        cold_start_perplexity(lm, ids[:12], window=12)
