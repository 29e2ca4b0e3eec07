"""layerkit.interop against PyTorch itself: for every built-in layer, container and model,
to_torch(model) and from_torch(to_torch(model)) give the outputs, input gradients and parameter
gradients of the layerkit original to 1e-10 in float64, with the same weights; state_dict names
are PyTorch's."""

import numpy as np
import pytest

import layerkit as lk
from layerkit import interop
from helpers import torch_or_skip

F64 = np.float64
TOL = 1e-10
MEASURED = []              # the largest difference of each case (printed with -s)


def _floats(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _ids(vocab, *shape, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, shape).astype(np.int64)


def _pool_indices():
    x = _floats(2, 3, 6, 6, seed=5)
    pooled, idx = lk.MaxPool2D(2, return_indices=True).forward(x)
    return pooled, idx


# name -> (build() -> layerkit model in float64, inputs(), forward keyword arguments)
CASES = {
    "Linear": (lambda: lk.Linear(5, 4, dtype=F64, seed=0), lambda: [_floats(3, 2, 5)], {}),
    "Linear-no-bias": (lambda: lk.Linear(5, 4, bias=False, dtype=F64, seed=0),
                       lambda: [_floats(3, 5)], {}),
    "Flatten": (lambda: lk.Flatten(), lambda: [_floats(2, 3, 4)], {}),
    "ReLU": (lambda: lk.ReLU(), lambda: [_floats(4, 5)], {}),
    "LeakyReLU": (lambda: lk.LeakyReLU(0.2), lambda: [_floats(4, 5)], {}),
    "Sigmoid": (lambda: lk.Sigmoid(), lambda: [_floats(4, 5)], {}),
    "Tanh": (lambda: lk.Tanh(), lambda: [_floats(4, 5)], {}),
    "Softmax": (lambda: lk.Softmax(axis=1), lambda: [_floats(3, 4, 2)], {}),
    "LogSoftmax": (lambda: lk.LogSoftmax(), lambda: [_floats(3, 4)], {}),
    "Dropout-eval": (lambda: lk.Dropout(0.3).eval(), lambda: [_floats(3, 4)], {}),
    "Identity": (lambda: lk.Identity(), lambda: [_floats(3, 4)], {}),
    "Conv1D": (lambda: lk.Conv1D(2, 3, 3, stride=2, padding=1, dtype=F64, seed=0),
               lambda: [_floats(2, 2, 9)], {}),
    "Conv2D": (lambda: lk.Conv2D(2, 3, 3, stride=(1, 2), padding=1, dilation=2, dtype=F64,
                                 seed=0), lambda: [_floats(2, 2, 7, 8)], {}),
    "Conv2D-same-even": (lambda: lk.Conv2D(2, 3, 4, padding="same", dtype=F64, seed=0),
                         lambda: [_floats(2, 2, 6, 5)], {}),
    "Conv2D-winograd": (lambda: lk.Conv2D(3, 4, 3, padding=1, algorithm="winograd", dtype=F64,
                                          seed=0), lambda: [_floats(2, 3, 8, 8)], {}),
    "Conv3D": (lambda: lk.Conv3D(2, 2, 2, padding=1, dtype=F64, seed=0),
               lambda: [_floats(1, 2, 3, 4, 3)], {}),
    "Conv2D-depthwise": (lambda: lk.Conv2D(2, 4, 3, padding=1, groups=2, dtype=F64, seed=0),
                         lambda: [_floats(2, 2, 5, 5)], {}),
    "ConvTranspose2D-groups": (lambda: lk.ConvTranspose2D(4, 2, 3, stride=2, groups=2,
                                                          dtype=F64, seed=0),
                               lambda: [_floats(2, 4, 3, 3)], {}),
    "ZeroPadShortcut": (lambda: lk.ZeroPadShortcut(2, 5, stride=2),
                        lambda: [_floats(2, 2, 5, 4)], {}),
    "ConvTranspose2D": (lambda: lk.ConvTranspose2D(3, 2, 3, stride=2, padding=1,
                                                   output_padding=1, dtype=F64, seed=0),
                        lambda: [_floats(2, 3, 4, 5)], {}),
    "MaxPool1D": (lambda: lk.MaxPool1D(3, stride=2, padding=1), lambda: [_floats(2, 3, 9)], {}),
    "MaxPool2D": (lambda: lk.MaxPool2D(2), lambda: [_floats(2, 3, 6, 7)], {}),
    "MaxPool2D-dilated": (lambda: lk.MaxPool2D(3, stride=1, padding=1, dilation=2),
                          lambda: [_floats(1, 2, 7, 7)], {}),
    "MaxPool3D": (lambda: lk.MaxPool3D(2), lambda: [_floats(1, 2, 4, 4, 4)], {}),
    "AvgPool1D": (lambda: lk.AvgPool1D(3, stride=2, padding=1), lambda: [_floats(2, 3, 9)], {}),
    "AvgPool2D": (lambda: lk.AvgPool2D(3, stride=2, padding=1),
                  lambda: [_floats(2, 3, 7, 6)], {}),
    "AvgPool3D": (lambda: lk.AvgPool3D(2), lambda: [_floats(1, 2, 4, 4, 4)], {}),
    "GlobalAvgPool": (lambda: lk.GlobalAvgPool(), lambda: [_floats(2, 3, 4, 5)], {}),
    "ChannelMaxPool": (lambda: lk.ChannelMaxPool(2), lambda: [_floats(2, 6, 3)], {}),
    "MaxUnpool2D": (lambda: lk.MaxUnpool2D(2), lambda: list(_pool_indices()), {}),
    "BatchNorm1D": (lambda: lk.BatchNorm1D(4, momentum=0.2, dtype=F64),
                    lambda: [_floats(6, 4)], {}),
    "BatchNorm2D": (lambda: lk.BatchNorm2D(3, dtype=F64), lambda: [_floats(4, 3, 2, 3)], {}),
    "BatchNorm2D-eval": (lambda: lk.BatchNorm2D(3, dtype=F64).eval(),
                         lambda: [_floats(4, 3, 2, 3)], {}),
    "Embedding": (lambda: lk.Embedding(7, 3, padding_idx=0, dtype=F64, seed=0),
                  lambda: [_ids(7, 3, 4)], {}),
    "RNN": (lambda: lk.RNN(3, 4, dtype=F64, seed=0), lambda: [_floats(2, 5, 3)],
            {"h0": _floats(2, 4, seed=1)}),
    "RNN-relu-last": (lambda: lk.RNN(3, 4, nonlinearity="relu", return_sequences=False,
                                     dtype=F64, seed=0), lambda: [_floats(2, 5, 3)], {}),
    "LSTM": (lambda: lk.LSTM(3, 4, dtype=F64, seed=0), lambda: [_floats(3, 5, 3)],
             {"h0": _floats(3, 4, seed=1), "c0": _floats(3, 4, seed=2),
              "lengths": np.array([5, 2, 4])}),
    "LSTM-last": (lambda: lk.LSTM(3, 4, return_sequences=False, dtype=F64, seed=0),
                  lambda: [_floats(3, 5, 3)], {"lengths": np.array([1, 5, 3])}),
    "GRU": (lambda: lk.GRU(3, 4, dtype=F64, seed=0), lambda: [_floats(3, 5, 3)],
            {"h0": _floats(3, 4, seed=1), "lengths": np.array([4, 5, 2])}),
    "Bidirectional-LSTM": (lambda: lk.Bidirectional(lk.LSTM(3, 4, dtype=F64, seed=0),
                                                    lk.LSTM(3, 4, dtype=F64, seed=7)),
                           lambda: [_floats(3, 5, 3)], {"lengths": np.array([5, 3, 1])}),
    "Bidirectional-GRU-last": (lambda: lk.Bidirectional(lk.GRU(3, 4, return_sequences=False,
                                                               dtype=F64, seed=0)),
                               lambda: [_floats(2, 4, 3)], {}),
    "Residual": (lambda: lk.Residual(lk.Sequential(lk.Linear(4, 4, dtype=F64, seed=0),
                                                   lk.Tanh())), lambda: [_floats(3, 4)], {}),
    "Residual-projection": (lambda: lk.Residual(lk.Linear(4, 3, dtype=F64, seed=0),
                                                lk.Linear(4, 3, dtype=F64, seed=1)),
                            lambda: [_floats(3, 4)], {}),
    "Concat": (lambda: lk.Concat(lk.Conv2D(2, 3, 1, dtype=F64, seed=0),
                                 lk.Conv2D(2, 1, 3, padding=1, dtype=F64, seed=1)),
               lambda: [_floats(2, 2, 4, 4)], {}),
    "Sequential-with-LSTM": (lambda: lk.Sequential(lk.LSTM(3, 4, dtype=F64, seed=0),
                                                   lk.Linear(4, 2, dtype=F64, seed=1)),
                             lambda: [_floats(2, 5, 3)], {}),
    # models
    "lenet5": (lambda: lk.models.lenet5(dtype=F64, seed=0), lambda: [_floats(2, 1, 28, 28)],
               {}),
    "vgg_small": (lambda: lk.models.vgg_small(channels=(4, 6), hidden=8, input_size=8,
                                              dtype=F64, seed=0),
                  lambda: [_floats(2, 1, 8, 8)], {}),
    "char_lstm": (lambda: lk.models.char_lstm(9, embedding_dim=4, hidden_size=5, num_layers=2,
                                              stateful=False, dtype=F64, seed=0),
                  lambda: [_ids(9, 3, 6)], {}),
    "Seq2Seq": (lambda: lk.models.Seq2Seq(8, 7, embedding_dim=4, hidden_size=5, dtype=F64,
                                          seed=0),
                lambda: [_ids(8, 3, 5), _ids(7, 3, 4, seed=1)],
                {"src_lengths": np.array([5, 2, 3])}),
    **{f"SequenceClassifier-{cell}": (
        lambda cell=cell: lk.models.SequenceClassifier(9, 3, embedding_dim=4, hidden_size=5,
                                                       cell=cell, dtype=F64, seed=0),
        lambda: [_ids(9, 3, 6)], {"lengths": np.array([6, 1, 4])}) for cell in
       ("lstm", "rnn", "gru")},
}


def _layerkit_run(model, inputs, kwargs, dy=None):
    """(y, dx or None, {torch name: gradient}) of one forward and backward(dy)."""
    model.zero_grad()
    y = model.forward(*inputs, **kwargs)
    y = y[0] if isinstance(y, tuple) else y
    if dy is None:
        dy = np.random.default_rng(9).standard_normal(y.shape)
    dx = model.backward(dy)
    names = interop.torch_names(model)
    return y, dy, dx, {names[k]: g.copy() for k, g in model.grads.items()}


def _torch_run(torch, module, inputs, kwargs, dy):
    tensors = [torch.from_numpy(x.copy()).requires_grad_(x.dtype.kind == "f") for x in inputs]
    kwargs = {k: torch.from_numpy(v) if v.dtype.kind == "f" else v for k, v in kwargs.items()}
    y = module(*tensors, **kwargs)
    y = y[0] if isinstance(y, tuple) else y
    y.backward(torch.from_numpy(dy))
    dx = tensors[0].grad
    grads = {n: p.grad.numpy() for n, p in module.named_parameters()}
    return y.detach().numpy(), None if dx is None else dx.numpy(), grads


def _largest_difference(a, b) -> float:
    scale = max(1.0, float(np.max(np.abs(a))) if np.size(a) else 1.0)
    return float(np.max(np.abs(a - b))) / scale if np.size(a) else 0.0


def _compare(name, reference, other):
    y, _, dx, grads = reference
    y2, dx2, grads2 = other
    assert y2.shape == y.shape and y2.dtype == np.float64
    worst = _largest_difference(y, y2)
    if dx is not None:
        worst = max(worst, _largest_difference(dx, dx2))
    assert set(grads2) == set(grads), (sorted(grads2), sorted(grads))
    for k in grads:
        worst = max(worst, _largest_difference(grads[k], grads2[k]))
    assert worst <= TOL, f"{name}: largest difference {worst:.2e}"
    return worst


def _rebuilt(build, state):
    """A fresh model of the same build holding ``state`` (PyTorch names)."""
    model = build()
    interop.load_state_dict(model, state)
    return model


@pytest.mark.parametrize("name", sorted(CASES))
def test_to_torch_and_back_agree_in_float64(name):
    torch = torch_or_skip()
    build, make_inputs, kwargs = CASES[name]
    model = build()
    if hasattr(model, "needs_input_grad"):
        model.needs_input_grad = True          # lenet5 and vgg_small skip ∂L/∂x by default
    inputs = make_inputs()
    weights = interop.state_dict(model)        # before a training forward moves BatchNorm's stats
    module = interop.to_torch(model)
    assert module.training == model.training
    reference = _layerkit_run(model, inputs, kwargs)
    worst = _compare(name, reference, _torch_run(torch, module, inputs, kwargs, reference[1]))
    after = {k: v.numpy() for k, v in module.state_dict().items()}
    for k, v in interop.state_dict(model).items():          # running statistics too
        if not k.endswith("num_batches_tracked"):
            worst = max(worst, _largest_difference(v, after[k]))

    back = interop.from_torch(interop.to_torch(_rebuilt(build, weights)))
    assert type(back).__name__ in (type(model).__name__, "Sequential")
    if hasattr(back, "needs_input_grad"):
        back.needs_input_grad = True
    y, _, dx, grads = _layerkit_run(back, inputs, kwargs, reference[1])
    worst = max(worst, _compare(name, reference, (y, dx, grads)))
    assert worst <= TOL
    MEASURED.append((name, worst))


def test_from_plain_torch_modules_matches_torch():
    """Modules written in plain PyTorch (not made by to_torch) come over with their weights."""
    torch = torch_or_skip()
    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * 4 * 4, 3),
                        nn.LogSoftmax(dim=1)).double().eval()
    lstm = nn.LSTM(3, 5, batch_first=True).double()
    x, seq = _floats(2, 1, 8, 8), _floats(2, 4, 3)
    got = interop.from_torch(net)
    assert isinstance(got, lk.Sequential) and not got.training
    np.testing.assert_allclose(got.forward(x), net(torch.from_numpy(x)).detach().numpy(),
                               rtol=0, atol=1e-12)
    y, h, c = interop.from_torch(lstm).forward(seq)
    ty, (th, tc) = lstm(torch.from_numpy(seq))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(c, tc[0].detach().numpy(), rtol=0, atol=1e-12)


def test_from_torch_names_the_first_module_without_a_twin():
    torch = torch_or_skip()
    nn = torch.nn
    net = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Tanh(), nn.GELU()), nn.SiLU())
    with pytest.raises(TypeError, match=r"from_torch: no layerkit twin for GELU \(GELU\(.*\)\) "
                                        r"at '1\.1'"):
        interop.from_torch(net)
    with pytest.raises(TypeError, match=r"from_torch: .*LSTM.* at 'the module'.*one layer"):
        interop.from_torch(nn.LSTM(2, 3, num_layers=2, batch_first=True))


def test_state_dict_has_pytorchs_names_without_torch():
    model = lk.models.char_lstm(9, embedding_dim=4, hidden_size=5, num_layers=2)
    names = list(interop.state_dict(model))
    assert names == ["embedding.weight",
                     "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0",
                     "lstm.weight_ih_l1", "lstm.weight_hh_l1", "lstm.bias_ih_l1", "lstm.bias_hh_l1",
                     "head.weight", "head.bias"]
    assert interop.torch_names(model)["lstm.1.weight_hh"] == "lstm.weight_hh_l1"
    bi = lk.Bidirectional(lk.GRU(2, 3))
    assert list(interop.state_dict(bi))[4:6] == ["weight_ih_l0_reverse", "weight_hh_l0_reverse"]
    bn = interop.state_dict(lk.Sequential(lk.BatchNorm1D(3)))
    assert list(bn) == ["0.weight", "0.bias", "0.running_mean", "0.running_var",
                        "0.num_batches_tracked"]


def test_state_dict_names_equal_a_hand_written_pytorch_model():
    torch = torch_or_skip()
    nn = torch.nn

    class CharModel(nn.Module):                      # as a PyTorch user writes it
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(9, 4)
            self.lstm = nn.LSTM(4, 5, num_layers=2, batch_first=True)
            self.head = nn.Linear(5, 9)

    mine = interop.state_dict(lk.models.char_lstm(9, embedding_dim=4, hidden_size=5,
                                                  num_layers=2))
    theirs = CharModel().state_dict()
    assert list(mine) == list(theirs)
    assert all(mine[k].shape == tuple(theirs[k].shape) for k in mine)
    lenet = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                          nn.Linear(84, 10))
    model = lk.models.lenet5()
    interop.load_state_dict(model, lenet.state_dict())           # a PyTorch LeNet's weights
    assert np.array_equal(model.params["9.weight"], lenet[9].weight.detach().numpy())


def test_load_state_dict_checks_everything_before_copying():
    model = lk.Sequential(lk.Linear(3, 2, seed=0), lk.Linear(2, 1, seed=1))
    before = {k: v.copy() for k, v in model.params.items()}
    state = interop.state_dict(model)
    state["0.weight"] = np.zeros((2, 3), np.float32)
    state["1.bias"] = np.zeros(2, np.float32)                     # wrong shape
    with pytest.raises(ValueError, match=r"nothing was loaded: '1\.bias': the model has shape "
                                         r"\(1,\), the state_dict \(2,\)"):
        interop.load_state_dict(model, state)
    del state["1.bias"]
    with pytest.raises(ValueError, match="missing: 1.bias"):
        interop.load_state_dict(model, {**state, "2.weight": np.zeros(1)})
    assert all(np.array_equal(model.params[k], before[k]) for k in before)


def test_float32_stays_float32():
    torch = torch_or_skip()
    module = interop.to_torch(lk.models.lenet5())
    assert all(p.dtype == torch.float32 for p in module.parameters())
    assert interop.from_torch(module).params["0.weight"].dtype == np.float32


def test_without_torch_the_error_names_the_extra(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "torch", None)
    interop._twins.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"needs PyTorch, which the crosscheck extra "
                                              r"installs: pip install \"\.\[crosscheck\]\""):
            interop.to_torch(lk.Linear(2, 2))
    finally:
        interop._twins.cache_clear()
