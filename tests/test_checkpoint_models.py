"""Checkpoints of the real models: save, load, and the loaded model computes bit for bit the
same outputs (the n-gram baseline through its counts)."""

import numpy as np
import pytest

import layerkit as lk
from layerkit import models
from layerkit.checkpoint import load, save

RNG = np.random.default_rng(3)


def _trained_like(model):
    """Parameters moved away from their seeded initial values, as training would."""
    for p in model.params.values():
        p += 0.01 * RNG.standard_normal(p.shape).astype(p.dtype)
    return model


CASES = {   # builder -> (make the model, make forward's inputs from a Generator)
    "lenet5": (lambda: models.lenet5(seed=1),
               lambda g: (g.standard_normal((2, 1, 28, 28)).astype(np.float32),)),
    "char_lstm": (lambda: models.char_lstm(7, embedding_dim=4, hidden_size=5, seed=1),
                  lambda g: (g.integers(0, 7, (2, 6)),)),
    "seq2seq": (lambda: models.Seq2Seq(6, 7, embedding_dim=3, hidden_size=4, seed=1),
                lambda g: (g.integers(0, 6, (2, 5)), g.integers(0, 7, (2, 4)))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_loaded_model_gives_identical_outputs(tmp_path, name):
    make, inputs = CASES[name]
    model = _trained_like(make())
    path = tmp_path / f"{name}.npz"
    save(model, path, meta={"note": name})
    loaded = load(path)
    assert loaded.meta == {"note": name} and type(loaded) is type(model)
    x = inputs(np.random.default_rng(9))
    outputs = []
    for m in (model, loaded):
        m.eval()
        if hasattr(m, "reset_state"):
            m.reset_state()
        outputs.append(m.forward(*x))
    a, b = outputs
    assert np.array_equal(a, b) and a.dtype == b.dtype
    fresh = make()                                   # the check can fail: untrained weights
    assert not np.array_equal(fresh.forward(*x), a)


def test_ngram_checkpoint_keeps_its_counts(tmp_path):
    text = RNG.integers(0, 5, 400)
    model = models.NGram(3, k=0.5, vocab_size=5).fit(text)
    save(model, tmp_path / "ngram.npz", meta={"vocab": "abcde"})
    loaded = load(tmp_path / "ngram.npz")
    held_out = RNG.integers(0, 5, 50)
    assert loaded.perplexity(held_out) == model.perplexity(held_out)
    assert np.array_equal(loaded.sample(20, seed=4), model.sample(20, seed=4))
    assert loaded.meta == {"vocab": "abcde"}


def test_ngram_checkpoint_with_foreign_counts_is_refused(tmp_path):
    model = models.NGram(2, vocab_size=3).fit(np.array([0, 1, 2, 1]))
    path = tmp_path / "ngram.npz"
    save(model, path)
    bigger = models.NGram(2, vocab_size=3).fit(np.array([0, 1, 2, 1]))
    bigger.spec = {"builder": "ngram", "kwargs": {"n": 2, "k": 1.0, "vocab_size": 2}}
    save(bigger, path)                       # counts of V = 3 under a spec of V = 2
    with pytest.raises(ValueError, match="does not match the model"):
        load(path)


def test_save_into_a_missing_folder_names_the_folder(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(FileNotFoundError, match=f"save: cannot write .*the folder "
                                                f"'{missing}' does not exist"):
        save(models.lenet5(seed=1), missing / "m.npz")
    assert not (tmp_path / "no").exists()


def test_batch_norm_running_statistics_are_restored_bit_for_bit(tmp_path):
    model = lk.models.resnet20(seed=0)
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    model.train()
    model.forward(x)                      # moves the running statistics off (0, 1)
    model.eval()
    before = model.forward(x)
    assert any(not np.all(v == 0) for k, v in model.buffers.items() if k.endswith("running_mean"))
    lk.checkpoint.save(model, tmp_path / "r.npz")
    loaded = lk.checkpoint.load(tmp_path / "r.npz")
    loaded.eval()
    np.testing.assert_array_equal(loaded.forward(x), before)
    for k, v in model.buffers.items():
        np.testing.assert_array_equal(loaded.buffers[k], v)
