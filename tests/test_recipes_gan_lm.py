"""`layerkit train dcgan | word-lstm | sentiment` on quick settings: each runs end to end,
writes a checkpoint whose reloaded model reproduces the recorded metrics exactly, and reports
its baseline. The full-length runs and their targets are in the recipes' docstrings."""

import numpy as np
import pytest

from layerkit import data as D
from layerkit.checkpoint import load
from layerkit.cli import main
from layerkit.train.recipe_dcgan import judge_digits
from layerkit.train.recipe_sentiment import sentiment_accuracy

from helpers import compiled, needs_data



@needs_data
@compiled
def test_dcgan_recipe_and_its_checkpoint(tmp_path, capsys):
    judge = str(tmp_path / "judge.npz")
    assert main(["train", "lenet", "--epochs", "1", "--limit", "300", "--out", judge,
                 "--quiet"]) == 0
    out = str(tmp_path / "gan.npz")
    assert main(["train", "dcgan", "--steps", "4", "--eval-every", "2", "--batch-size", "16",
                 "--classifier", judge, "--out", out, "--quiet"]) == 0
    assert "dcgan: confident_fraction" in capsys.readouterr().out
    model = load(out)
    meta = model.meta
    assert [h["step"] for h in meta["history"]] == [2, 4] and meta["classifier"] == judge
    judged = judge_digits(load(judge), model.generate(1000, seed=meta["sample_seed"]))
    assert judged["confident_fraction"] == meta["metrics"]["confident_fraction"]
    assert judged["class_fractions"] == meta["history"][-1]["class_fractions"]
    assert abs(sum(judged["class_fractions"]) - 1) < 1e-9


@needs_data
@compiled
def test_dcgan_stabiliser_options(tmp_path, capsys):
    judge = str(tmp_path / "judge.npz")
    assert main(["train", "lenet", "--epochs", "1", "--limit", "300", "--out", judge,
                 "--quiet"]) == 0
    out = str(tmp_path / "gan.npz")
    assert main(["train", "dcgan", "--steps", "4", "--eval-every", "4", "--batch-size", "8",
                 "--minibatch-std", "yes", "--d-lr", "4e-4", "--lr-decay", "0.5",
                 "--instance-noise", "0.1",
                 "--classifier", judge, "--out", out, "--quiet"]) == 0
    model = load(out)
    options = model.meta["options"]
    assert model.minibatch_std and options["minibatch_std"] is True
    assert options["d_lr"] == 4e-4 and options["lr_decay"] == 0.5 and options["lr"] == 2e-4
    assert options["instance_noise"] == 0.1
    for bad, says in ((["--lr-decay", "1.5"], "lr_decay"), (["--d-lr", "0"], "d_lr"),
                      (["--instance-noise", "-1"], "instance_noise")):
        assert main(["train", "dcgan", "--steps", "1", "--classifier", judge] + bad) == 2
        assert says in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:                     # argparse's usage error
        main(["train", "dcgan", "--minibatch-std", "maybe"])
    assert stop.value.code == 2
    assert "--minibatch-std: expected 1/0, true/false" in capsys.readouterr().err


def test_dcgan_classifier_must_exist(tmp_path, capsys):
    assert main(["train", "dcgan", "--classifier", str(tmp_path / "none.npz")]) == 2
    assert "classifier must be a checkpoint" in capsys.readouterr().err


def test_judge_digits_counts_confidence_and_classes():
    class Fixed:                                   # logits chosen by hand
        def eval(self):
            return self

        def forward(self, x):
            logits = np.zeros((len(x), 10))
            logits[0, 3] = 10.0                    # confident 3
            logits[1, 3] = 1.0                     # unsure 3 (p = e/(e+9) ≈ 0.23)
            logits[2, 7] = 10.0                    # confident 7
            logits[3, 1] = 10.0                    # confident 1
            return logits
    got = judge_digits(Fixed(), np.zeros((4, 1, 28, 28)))
    assert got["confident_fraction"] == 0.75
    assert got["class_fractions"] == [0, 0.25, 0, 0.5, 0, 0, 0, 0.25, 0, 0]
    assert got["smallest_class_fraction"] == 0


@needs_data
@compiled
def test_word_lstm_recipe_beats_uniform_and_reports_the_ngram(tmp_path, capsys):
    out = str(tmp_path / "wlm.npz")
    assert main(["train", "word-lstm", "--max-words", "4000", "--epochs", "1",
                 "--batch-size", "4", "--seq-len", "20", "--hidden-size", "16",
                 "--embedding-dim", "8", "--lr", "0.01", "--out", out, "--quiet"]) == 0
    model = load(out)
    m = model.meta["metrics"]
    words = model.meta["words"]
    assert len(words) == 2000 and words[0] == "<unk>"
    assert m["valid_perplexity"] < 1000                # uniform over 2,000 words: 2,000
    assert 50 < m["word_2gram_valid_perplexity"] < 2000


@compiled
def test_sentiment_recipe_and_its_checkpoint(tmp_path, capsys):
    out = str(tmp_path / "sent.npz")
    assert main(["train", "sentiment", "--steps", "30", "--eval-every", "15",
                 "--hidden-size", "16", "--out", out, "--quiet"]) == 0
    model = load(out)
    m = model.meta["metrics"]
    assert 0.5 < m["bag_of_words_accuracy"] < 0.75      # negation defeats a bag of words
    test = D.sentiment_sequences(2000, seed=10**6)     # the recipe's held-out set (seed 0)
    assert sentiment_accuracy(model, test) == m["test_accuracy"]
    assert model.meta["tokens"] == list(D.SentimentTask.TOKENS)


def test_translate_moves_each_image_and_its_backward_is_the_adjoint():
    """By hand on a 3x3 image, then the adjoint identity <T0 x, g> = <x, T0' g> for the linear
    part (fill 0) on random data."""
    from layerkit.train.recipe_dcgan import translate, translate_backward
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    down_right = translate(x, np.array([[1, 1]]), -1.0)[0, 0]
    np.testing.assert_array_equal(down_right, [[-1, -1, -1], [-1, 1, 2], [-1, 4, 5]])
    up = translate(x, np.array([[-1, 0]]), 0.0)[0, 0]
    np.testing.assert_array_equal(up, [[4, 5, 6], [7, 8, 9], [0, 0, 0]])
    rng = np.random.default_rng(0)
    xs, g = rng.standard_normal((2, 5, 2, 6, 7))
    moves = rng.integers(-2, 3, (5, 2))
    lhs = np.sum(translate(xs, moves, 0.0) * g)
    rhs = np.sum(xs * translate_backward(g, moves))
    assert abs(lhs - rhs) < 1e-12 * np.sum(np.abs(xs) * np.abs(translate_backward(g, moves)) + 1)
    assert translate(xs[:0], moves[:0], -1.0).shape == (0, 2, 6, 7)
