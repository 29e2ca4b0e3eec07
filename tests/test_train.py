"""layerkit.train: the fit loop, validation metrics, progress display and checkpoints."""

import hashlib
import io
import json
import math
import os
import sys
import types

import numpy as np
import pytest

import layerkit as lk
from layerkit.data import MissingExtraError, batches, sequence_batches
from layerkit.train import (History, evaluate, fit, load, load_params, save, save_params)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _blobs(n=240, seed=0, dtype=np.float32):
    """Three well-separated Gaussian blobs in 4-D; labels 0, 1, 2."""
    rng = np.random.default_rng(seed)
    centres = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], dtype=np.float64)
    y = rng.integers(0, 3, n)
    x = centres[y] + 0.5 * rng.standard_normal((n, 4))
    return x.astype(dtype), y.astype(np.int64)


def _mlp(seed=0, dtype=np.float32, hidden=8, out=3):
    return lk.Sequential(lk.Linear(4, hidden, dtype=dtype, seed=seed), lk.Tanh(),
                         lk.Dropout(0.2, seed=seed + 10),
                         lk.Linear(hidden, out, dtype=dtype, seed=seed + 1))


def _snapshot(model):
    return {k: v.copy() for k, v in model.params.items()}


def _assert_params_equal(model, snapshot):
    assert set(model.params) == set(snapshot)
    for k, v in model.params.items():
        assert v.dtype == snapshot[k].dtype and np.array_equal(v, snapshot[k]), k


def _log_softmax(z):
    z = z.astype(np.float64)
    out = np.empty_like(z)
    for idx in np.ndindex(z.shape[:-1]):           # one row at a time, as written on paper
        row = z[idx]
        m = max(row)
        out[idx] = row - m - math.log(sum(math.exp(v - m) for v in row))
    return out


def _fit(model, data, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("epochs", 2)
    opt = kw.pop("optimizer", None) or lk.Adam(model, lr=1e-2)
    return fit(model, lk.CrossEntropy(), opt, data, **kw)


# --------------------------------------------------------------------------------------------
# learning
# --------------------------------------------------------------------------------------------

def test_fit_learns_separable_blobs():
    x, y = _blobs(300)
    model = _mlp()
    h = _fit(model, (x[:240], y[:240]), val_data=(x[240:], y[240:]), epochs=8, batch_size=16)
    assert isinstance(h, History) and [r["epoch"] for r in h] == list(range(1, 9))
    assert h[0]["train_loss"] > h[-1]["train_loss"]
    assert h[-1]["train_loss"] < 0.15, h.column("train_loss")
    assert h[-1]["val_loss"] < 0.15 and h[-1]["val_accuracy"] >= 0.95, h[-1]
    assert h[-1]["samples_per_s"] > 0 and h[-1]["tokens_per_s"] is None
    assert h[-1]["seconds"] > 0


def test_fit_learns_8x8_digits():
    try:
        from layerkit.data import load_digits
        s = load_digits(flatten=True)
    except MissingExtraError as err:
        pytest.skip(f"data extra not installed: {err}")
    net = lk.Sequential(lk.Linear(64, 64, seed=0), lk.ReLU(), lk.Linear(64, 10, seed=1))
    h = fit(net, lk.CrossEntropy(), lk.Adam(net, lr=1e-2), (s.x_train, s.y_train), epochs=4,
            batch_size=32, val_data=(s.x_test, s.y_test), progress=False)
    # chance is 0.1 and log(10) = 2.30 nats
    assert h[-1]["train_loss"] < 0.3 and h[-1]["val_loss"] < 0.3, str(h)
    assert h[-1]["val_accuracy"] > 0.9, str(h)


def test_fit_matches_a_handwritten_loop_bit_for_bit():
    """The documented step order, array batching from seed and clip_norm, nothing else."""
    x, y = _blobs(100)
    a, b = _mlp(seed=3), _mlp(seed=3)
    fit(a, lk.CrossEntropy(), lk.SGD(a, lr=0.3, momentum=0.9), (x, y), epochs=3, batch_size=16,
        clip_norm=0.5, seed=7, progress=False)
    loss, opt = lk.CrossEntropy(), lk.SGD(b, lr=0.3, momentum=0.9)
    data = batches(x, y, 16, seed=7)
    for _ in range(3):
        for xb, yb in data:
            b.train()
            opt.zero_grad()
            loss.forward(b.forward(xb), yb)
            b.backward(loss.backward())
            lk.clip_grad_norm(b, 0.5)
            opt.step()
    _assert_params_equal(a, _snapshot(b))


def test_same_seed_gives_bit_identical_weights_and_another_seed_does_not():
    x, y = _blobs(120)
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        model = _mlp(seed=1)
        h = _fit(model, (x, y), epochs=3, batch_size=10, seed=seed)
        runs[name] = (_snapshot(model), h.column("train_loss"))
    pa, la = runs["a"]
    pb, lb = runs["b"]
    pc, lc = runs["c"]
    assert la == lb
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)
    assert not all(np.array_equal(pa[k], pc[k]) for k in pa)
    assert la != lc


# --------------------------------------------------------------------------------------------
# validation metrics against hand computations
# --------------------------------------------------------------------------------------------

def _fixed_linear():
    """Linear(3, 4) in float64 with fixed weights; 5 samples; batches of 2, 2 and 1."""
    lin = lk.Linear(3, 4, dtype=np.float64)
    lin.params["weight"][...] = [[1.0, -2.0, 0.5], [0.0, 1.0, 1.0], [-1.0, 0.5, 2.0],
                                 [0.3, 0.3, -0.3]]
    lin.params["bias"][...] = [0.1, -0.2, 0.0, 0.4]
    x = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0],
                  [-1.0, 2.0, 0.5]])
    y = np.array([0, 1, 3, 2, 1])
    return lin, x, y


def test_evaluate_loss_and_accuracy_by_hand_with_unequal_batches():
    lin, x, y = _fixed_linear()
    z = x @ lin.params["weight"].T + lin.params["bias"]
    logp = _log_softmax(z)
    nll = [-logp[i, y[i]] for i in range(5)]
    correct = [int(np.argmax(z[i]) == y[i]) for i in range(5)]
    res = evaluate(lin, lk.CrossEntropy(), (x, y), batch_size=2, metrics=("accuracy",))
    assert res["loss"] == pytest.approx(sum(nll) / 5, rel=1e-12)
    batch_means = [(nll[0] + nll[1]) / 2, (nll[2] + nll[3]) / 2, nll[4]]
    assert abs(res["loss"] - sum(batch_means) / 3) > 1e-3        # the test can tell them apart
    assert res["accuracy"] == sum(correct) / 5 and 0 < res["accuracy"] < 1
    assert res["samples"] == 5
    # other reductions: the whole set as one batch
    res = evaluate(lin, lk.CrossEntropy(reduction="sum"), (x, y), batch_size=2, metrics=())
    assert res["loss"] == pytest.approx(sum(nll), rel=1e-12)
    res = evaluate(lin, lk.CrossEntropy(reduction="batchmean"), (x, y), batch_size=2, metrics=())
    assert res["loss"] == pytest.approx(sum(nll) / 5, rel=1e-12)


def test_fit_validation_record_equals_hand_computation_on_the_final_weights():
    lin, x, y = _fixed_linear()
    h = fit(lin, lk.CrossEntropy(), lk.SGD(lin, lr=0.1), (x, y), epochs=1, batch_size=2,
            val_data=(x, y), metrics=("accuracy", "perplexity"), progress=False)
    z = x @ lin.params["weight"].T + lin.params["bias"]        # the weights after the epoch
    logp = _log_softmax(z)
    mean_nll = -sum(logp[i, y[i]] for i in range(5)) / 5
    assert h[0]["val_loss"] == pytest.approx(mean_nll, rel=1e-12)
    assert h[0]["val_perplexity"] == pytest.approx(math.exp(mean_nll), rel=1e-12)
    assert h[0]["val_accuracy"] == np.mean(np.argmax(z, axis=1) == y)


def _token_model(V=5, D=3):
    model = lk.Sequential(lk.Embedding(V, D, dtype=np.float64, seed=0),
                          lk.Linear(D, V, dtype=np.float64, seed=1))
    return model


def test_perplexity_and_accuracy_over_all_positions_by_hand():
    V = 5
    model = _token_model(V)
    rng = np.random.default_rng(1)
    x = rng.integers(0, V, (3, 4))
    y = rng.integers(0, V, (3, 4))
    z = model.forward(x)                                   # (3, 4, V) logits
    logp = _log_softmax(z)
    nll = [-logp[n, t, y[n, t]] for n in range(3) for t in range(4)]
    hits = [int(np.argmax(z[n, t]) == y[n, t]) for n in range(3) for t in range(4)]
    # batchmean reduction: the loss is summed over time, perplexity is still per token
    res = evaluate(model, lk.CrossEntropy(reduction="batchmean"), (x, y), batch_size=2,
                   metrics=("accuracy", "perplexity"))
    assert res["perplexity"] == pytest.approx(math.exp(sum(nll) / 12), rel=1e-12)
    assert res["accuracy"] == sum(hits) / 12
    assert res["loss"] == pytest.approx(sum(nll) / 3, rel=1e-12)
    res = evaluate(model, lk.CrossEntropy(), (x, y), batch_size=2, metrics="perplexity")
    assert res["perplexity"] == pytest.approx(math.exp(res["loss"]), rel=1e-12)


def test_sequence_targets_report_tokens_per_second():
    model = _token_model()
    ids = np.random.default_rng(0).integers(0, 5, 200)
    h = fit(model, lk.CrossEntropy(), lk.Adam(model, lr=1e-2),
            lambda epoch: sequence_batches(ids, 4, 8), epochs=2,
            val_data=lambda epoch: sequence_batches(ids[:60], 2, 8),
            metrics=("perplexity",), progress=False)
    rec = h[-1]
    assert rec["tokens_per_s"] > rec["samples_per_s"] > 0
    assert rec["val_perplexity"] == pytest.approx(math.exp(rec["val_loss"]), rel=1e-12)


def test_accuracy_needs_integer_class_targets():
    x, _ = _blobs(20)
    y = np.zeros((20, 3), dtype=np.float32)
    y[:, 0] = 1.0
    with pytest.raises(ValueError, match=r"fit: metric 'accuracy' needs integer class targets "
                                         r"of shape \(\d+,\).*got float32 of shape"):
        _fit(_mlp(), (x, y), val_data=(x, y), batch_size=5, epochs=1)


# --------------------------------------------------------------------------------------------
# callable data, state, non-finite values
# --------------------------------------------------------------------------------------------

class _Stateful:
    """A model with reset_state that records what happens to it."""

    def __init__(self):
        self.net = _mlp(seed=2)
        self.events = []
        self.training = True

    params = property(lambda self: self.net.params)
    grads = property(lambda self: self.net.grads)

    def reset_state(self):
        self.events.append("reset")

    def train(self, mode=True):
        self.training = mode
        self.net.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        self.net.zero_grad()

    def forward(self, x):
        self.events.append("train" if self.training else "eval")
        return self.net.forward(x)

    def backward(self, dy):
        return self.net.backward(dy)


def test_callable_data_and_reset_state():
    x, y = _blobs(40)
    seen = []

    def train_data(epoch):
        seen.append(epoch)
        return [(x[:16], y[:16]), (x[16:32], y[16:32])]

    model = _Stateful()
    h = fit(model, lk.CrossEntropy(), lk.SGD(model, lr=0.1), train_data, epochs=3,
            val_data=lambda epoch: [(x[32:], y[32:])], progress=False)
    assert seen == [1, 2, 3]
    assert model.events == ["reset", "train", "train", "reset", "eval"] * 3
    assert len(h) == 3 and all("val_accuracy" in r for r in h)
    assert model.training is True                   # the mode before fit is restored


def test_a_generator_per_epoch_and_an_empty_epoch():
    x, y = _blobs(40)
    model = _mlp()
    h = _fit(model, lambda e: ((x[i:i + 8], y[i:i + 8]) for i in range(0, 40, 8)), epochs=2)
    assert len(h) == 2
    with pytest.raises(ValueError, match="fit: train_data yielded no batches in epoch 1"):
        _fit(model, lambda e: [], epochs=1)


def test_non_finite_output_raises_naming_epoch_and_step():
    x, y = _blobs(32)
    bad = x[8:16].copy()
    bad[3, 1] = np.nan
    model = _mlp()
    before = _snapshot(model)
    data = lambda epoch: [(x[:8], y[:8]), (bad, y[8:16])]
    with pytest.raises(FloatingPointError, match=r"fit: .*NaN or infinity at epoch 1, step 2"):
        _fit(model, data, optimizer=lk.SGD(model, lr=0.1), epochs=1)
    assert not all(np.array_equal(before[k], v) for k, v in model.params.items())  # step 1 ran
    assert all(np.all(np.isfinite(v)) for v in model.params.values())            # no NaN step


def test_non_finite_loss_raises():
    class NanLoss(lk.CrossEntropy):
        def forward(self, pred, target):
            super().forward(pred, target)
            return float("nan")

    x, y = _blobs(32)
    model = _mlp()
    with pytest.raises(FloatingPointError, match=r"fit: the loss is nan at epoch 1, step 1"):
        fit(model, NanLoss(), lk.SGD(model, lr=0.1), (x, y), epochs=2, batch_size=8,
            progress=False)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_divergence_is_caught_not_trained_through():
    x, y = _blobs(64)
    x = x * 1e3
    model = lk.Sequential(lk.Linear(4, 8, seed=0), lk.ReLU(), lk.Linear(8, 3, seed=1))
    with pytest.raises(FloatingPointError, match=r"at epoch \d+, step \d+"):
        fit(model, lk.CrossEntropy(), lk.SGD(model, lr=1e6), (x, y), epochs=20, batch_size=8,
            progress=False)


# --------------------------------------------------------------------------------------------
# argument validation
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    ({"epochs": 0}, ValueError, r"fit: epochs must be a positive integer, got 0"),
    ({"epochs": 1.5}, ValueError, r"fit: epochs must be a positive integer, got 1.5"),
    ({"batch_size": None}, ValueError, r"fit: batch_size is required when the data are \(x, y\)"),
    ({"batch_size": 0}, ValueError, r"fit: batch_size must be a positive integer, got 0"),
    ({"metrics": ("accuracy", "f1")}, ValueError,
     r"fit: unknown metric 'f1'; expected one of 'accuracy', 'perplexity'"),
    ({"clip_norm": -1.0}, ValueError, r"fit: clip_norm must be in \(0.0, inf\], got -1.0"),
    ({"seed": "0"}, ValueError, r"fit: seed must be an integer, got '0'"),
    ({"log": 3}, TypeError, r"fit: log must be a callable or a writable file, got int"),
    ({"train_data": "data.npz"}, TypeError,
     r"fit: expected train_data to be a tuple \(x, y\) of numpy arrays or a callable"),
    ({"train_data": (np.zeros((4, 4), np.float32), np.zeros(3, np.int64))}, ValueError,
     r"fit: expected train_data = \(x, y\) with the same number of samples N on axis 0, "
     r"got shapes \(4, 4\) and \(3,\)"),
    ({"val_data": (np.zeros((4, 4), np.float32), np.zeros(5, np.int64))}, ValueError,
     r"fit: expected val_data = \(x, y\) with the same number .* got shapes \(4, 4\) and \(5,\)"),
])
def test_fit_argument_errors(kwargs, error, match):
    x, y = _blobs(16)
    model = _mlp()
    before = _snapshot(model)
    args = {"train_data": (x, y), "epochs": 1, "batch_size": 4, "progress": False, **kwargs}
    data = args.pop("train_data")
    with pytest.raises(error, match=match):
        fit(model, lk.CrossEntropy(), lk.SGD(model, lr=0.1), data, **args)
    _assert_params_equal(model, before)


def test_fit_rejects_objects_without_the_contract():
    x, y = _blobs(16)
    model = _mlp()
    with pytest.raises(TypeError, match=r"fit: expected optimizer with zero_grad and step, "
                                        r"got object without zero_grad, step"):
        fit(model, lk.CrossEntropy(), object(), (x, y), epochs=1, batch_size=4, progress=False)


# --------------------------------------------------------------------------------------------
# history, log, progress display
# --------------------------------------------------------------------------------------------

def test_history_serialises_and_prints():
    x, y = _blobs(60)
    records, stream = [], io.StringIO()
    h = _fit(_mlp(), (x, y), val_data=(x, y), batch_size=20, epochs=2, log=records.append)
    assert json.loads(json.dumps(h)) == list(h) == json.loads(h.to_json())
    assert records == list(h)
    assert list(h[0]) == ["epoch", "train_loss", "val_loss", "val_accuracy", "seconds",
                          "samples_per_s", "tokens_per_s"]
    table = str(h).splitlines()
    assert len(table) == 3 and table[0].split()[:4] == ["epoch", "train_loss", "val_loss",
                                                         "val_accuracy"]
    assert "tokens_per_s" not in table[0]                 # all None: column left out
    assert h.column("val_accuracy") == [r["val_accuracy"] for r in h]
    with pytest.raises(KeyError, match="History.column: no key 'accuracy'"):
        h.column("accuracy")
    _fit(_mlp(), (x, y), batch_size=20, epochs=2, log=stream)
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_progress_false_prints_nothing(capsys):
    x, y = _blobs(40)
    _fit(_mlp(), (x, y), val_data=(x, y), batch_size=8, epochs=2, progress=False)
    assert capsys.readouterr() == ("", "")


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------

def _build_tiny(spec):
    kw = spec["kwargs"]
    dtype = np.dtype(kw.get("dtype", "float32"))
    model = lk.Sequential(lk.Linear(4, kw["hidden"], dtype=dtype, seed=0), lk.Tanh(),
                          lk.Linear(kw["hidden"], 3, dtype=dtype, seed=1))
    model.spec = spec
    return model


@pytest.fixture
def fake_models(monkeypatch):
    """A stand-in for layerkit.models (written elsewhere) with only ``build``."""
    calls = []

    def build(spec):
        calls.append(spec)
        if spec.get("builder") != "tiny":
            raise ValueError(f"build: unknown builder {spec.get('builder')!r}")
        return _build_tiny(spec)

    module = types.ModuleType("layerkit.models")
    module.build = build
    monkeypatch.setitem(sys.modules, "layerkit.models", module)
    monkeypatch.setattr(lk, "models", module, raising=False)
    return calls


def _trained_tiny(hidden=6, dtype="float32"):
    model = _build_tiny({"builder": "tiny", "kwargs": {"hidden": hidden, "dtype": dtype}})
    x, y = _blobs(40)
    fit(model, lk.CrossEntropy(), lk.Adam(model, lr=1e-2), (x.astype(dtype), y), epochs=1,
        batch_size=8, progress=False)
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip_is_bit_identical(tmp_path, fake_models, dtype):
    model = _trained_tiny(dtype=dtype)
    path = tmp_path / "tiny.ckpt"                          # any name: no suffix is added
    meta = {"epochs": 1, "vocab": ["a", "b"], "val_accuracy": 0.5}
    save(model, path, meta=meta)
    assert os.listdir(tmp_path) == ["tiny.ckpt"]            # no temporary file left behind
    loaded = load(path)
    assert fake_models == [model.spec]
    assert loaded is not model and loaded.spec == model.spec and loaded.meta == meta
    _assert_params_equal(loaded, _snapshot(model))
    x = _blobs(10, seed=3)[0].astype(dtype)
    assert np.array_equal(loaded.forward(x), model.forward(x))
    save(loaded, path)                                      # meta=None: the model's meta is kept
    assert load(path).meta == meta


def test_checkpoint_format_is_as_documented(tmp_path):
    model = lk.Sequential(lk.Linear(4, 3, seed=0), lk.BatchNorm1D(3))
    model.forward(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    save_params(model, tmp_path / "m.npz", meta={"k": 1})
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        e = {k: f[k] for k in f.files}
    assert str(e["format"]) == "layerkit-checkpoint" and int(e["format_version"]) == 2
    assert json.loads(str(e["spec"])) is None and json.loads(str(e["meta"])) == {"k": 1}
    names = sorted(k[len("param/"):] for k in e if k.startswith("param/"))
    assert names == sorted(model.params)
    buffers = sorted(k for k in e if k.startswith("buffer/"))
    assert buffers == ["buffer/1.running_mean", "buffer/1.running_var"]
    np.testing.assert_array_equal(e["buffer/1.running_mean"], model.layers[1].running_mean)
    h = hashlib.sha256()

    def field(b):
        h.update(len(b).to_bytes(8, "little") + b)

    for text in ("layerkit-checkpoint", "2", str(e["spec"]), str(e["meta"])):
        field(text.encode())
    for name in sorted(names + buffers):        # buffers by their entry name, among the params
        a = e[name if name.startswith("buffer/") else "param/" + name]
        for b in (name.encode(), a.dtype.str.encode(), ",".join(map(str, a.shape)).encode(),
                  a.tobytes()):
            field(b)
    assert h.hexdigest() == str(e["digest"])


def test_save_params_load_params_on_a_sequential(tmp_path):
    src, dst = _mlp(seed=1), _mlp(seed=2)
    assert not all(np.array_equal(src.params[k], dst.params[k]) for k in src.params)
    opt = lk.SGD(dst, lr=0.1)
    arrays = {k: id(v) for k, v in dst.params.items()}
    save_params(src, tmp_path / "p.npz", meta={"note": "x"})
    assert load_params(dst, tmp_path / "p.npz") == {"note": "x"}
    _assert_params_equal(dst, _snapshot(src))
    assert {k: id(v) for k, v in dst.params.items()} == arrays   # copied in place
    x = _blobs(8)[0]
    assert np.array_equal(src.eval().forward(x), dst.eval().forward(x))
    assert opt.model is dst


def test_save_requires_a_spec_and_load_requires_one(tmp_path, fake_models):
    with pytest.raises(ValueError, match=r"save: Sequential has no spec attribute.*save_params"):
        save(_mlp(), tmp_path / "a.npz")
    assert not os.listdir(tmp_path)
    save_params(_mlp(), tmp_path / "b.npz")
    with pytest.raises(ValueError, match=r"load: checkpoint .*b.npz' has no spec.*load_params"):
        load(tmp_path / "b.npz")
    model = _mlp()
    model.spec = {"builder": "tiny", "kwargs": {"bad": object()}}
    with pytest.raises(ValueError, match=r"save: the model's spec must be JSON-serialisable"):
        save(model, tmp_path / "c.npz")
    with pytest.raises(ValueError, match=r"save_params: meta must be JSON-serialisable"):
        save_params(_mlp(), tmp_path / "c.npz", meta={"x": np.float32(1)})
    assert sorted(os.listdir(tmp_path)) == ["b.npz"]


def test_load_reports_a_spec_that_cannot_be_built(tmp_path, fake_models):
    model = _trained_tiny()
    model.spec = {"builder": "nope", "kwargs": {}}
    save(model, tmp_path / "m.npz")
    with pytest.raises(ValueError, match=r"load: cannot rebuild the model .* unknown builder"):
        load(tmp_path / "m.npz")


def _flip(path, offset):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_flipped_bytes_in_any_parameter_raise_and_load_nothing(tmp_path):
    src = _mlp(seed=1)
    path = tmp_path / "p.npz"
    save_params(src, path)
    raw = path.read_bytes()
    for name, p in src.params.items():
        offset = raw.find(p.tobytes())
        assert offset > 0, name
        for where in (offset, offset + p.nbytes - 1):
            path.write_bytes(raw)
            _flip(path, where)
            dst = _mlp(seed=2)
            before = _snapshot(dst)
            with pytest.raises(ValueError, match=r"load_params: checkpoint .*p.npz'"):
                load_params(dst, path)
            _assert_params_equal(dst, before)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_raises_and_loads_nothing(tmp_path, fake_models, fraction):
    model = _trained_tiny()
    path = tmp_path / "m.npz"
    save(model, path)
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * fraction)])
    with pytest.raises(ValueError, match=r"load: checkpoint .*m.npz' cannot be read"):
        load(path)
    dst = _build_tiny(model.spec)
    before = _snapshot(dst)
    with pytest.raises(ValueError, match=r"load_params: checkpoint .*m.npz' cannot be read"):
        load_params(dst, path)
    _assert_params_equal(dst, before)


def _rewrite(path, **changes):
    """Rewrite an archive as a valid zip with some entries changed (no digest update)."""
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    entries.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **entries)


def test_tampered_values_in_a_valid_archive_fail_the_digest(tmp_path):
    src = _mlp(seed=1)
    path = tmp_path / "p.npz"
    save_params(src, path, meta={"epochs": 3})
    w = src.params["0.weight"].copy()
    w[0, 0] = np.nextafter(w[0, 0], np.float32(np.inf))        # one ulp
    _rewrite(path, **{"param/0.weight": w})
    dst = _mlp(seed=2)
    before = _snapshot(dst)
    with pytest.raises(ValueError, match=r"load_params: checkpoint .*p.npz' is corrupted: its "
                                         r"SHA-256 digest does not match"):
        load_params(dst, path)
    _assert_params_equal(dst, before)
    save_params(src, path, meta={"epochs": 3})
    _rewrite(path, meta=np.array('{"epochs": 30}'))
    with pytest.raises(ValueError, match="digest does not match"):
        load_params(dst, path)


def test_unsupported_version_and_foreign_files(tmp_path):
    path = tmp_path / "p.npz"
    save_params(_mlp(), path)
    _rewrite(path, format_version=np.array(3))
    with pytest.raises(ValueError, match=r"unsupported format_version 3, expected 1 or 2 "
                                         r"\(written by a newer layerkit\?\)"):
        load_params(_mlp(), path)
    np.savez(tmp_path / "other.npz", weight=np.zeros(3))
    with pytest.raises(ValueError, match=r"is not a layerkit checkpoint: it lacks the entries "
                                         r"format, format_version, spec, meta, digest"):
        load_params(_mlp(), tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match=r"is not a layerkit checkpoint \(not an .npz archive\)"):
        load_params(_mlp(), tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError, match=r"load_params: checkpoint .*missing.npz' does "
                                                r"not exist"):
        load_params(_mlp(), tmp_path / "missing.npz")


def test_mismatched_shapes_dtypes_and_names_raise_and_load_nothing(tmp_path):
    path = tmp_path / "p.npz"
    save_params(_mlp(hidden=8), path)
    # 0.weight (8, 4) fits, the second layer does not: nothing at all may be loaded
    dst = lk.Sequential(lk.Linear(4, 8, seed=5), lk.Tanh(), lk.Dropout(0.2),
                        lk.Linear(8, 2, seed=6))
    before = _snapshot(dst)
    with pytest.raises(ValueError, match=r"load_params: checkpoint .*p.npz' does not match the "
                                         r"model \(Sequential\); nothing was loaded: "
                                         r"'3.bias': model has shape \(2,\), checkpoint \(3,\); "
                                         r"'3.weight': model has shape \(2, 8\), checkpoint "
                                         r"\(3, 8\)"):
        load_params(dst, path)
    _assert_params_equal(dst, before)
    with pytest.raises(ValueError, match=r"'0.weight': model has dtype float64, checkpoint "
                                         r"float32"):
        load_params(_mlp(dtype=np.float64), path)
    other = lk.Sequential(lk.Linear(4, 8), lk.Tanh(), lk.Linear(8, 3))
    with pytest.raises(ValueError, match=r"missing from the checkpoint: 2.bias, 2.weight; not "
                                         r"parameters of the model: 3.bias, 3.weight"):
        load_params(other, path)


def test_load_checks_the_rebuilt_model(tmp_path, fake_models):
    model = _trained_tiny(hidden=6)
    model.spec = {"builder": "tiny", "kwargs": {"hidden": 7, "dtype": "float32"}}  # stale spec
    save(model, tmp_path / "m.npz")
    with pytest.raises(ValueError, match=r"load: checkpoint .*m.npz' does not match the model "
                                         r".*'0.weight': model has shape \(7, 4\), checkpoint "
                                         r"\(6, 4\)"):
        load(tmp_path / "m.npz")


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "p.npz"
    save_params(_mlp(seed=1), path)
    good = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        save_params(_mlp(seed=2), path)
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["p.npz"]
