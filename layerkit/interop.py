"""To and from PyTorch: the same architecture and weights in the other library, in one call.

- :func:`to_torch` (layerkit model -> ``torch.nn.Module``) for every built-in layer and
  container and the models of :mod:`layerkit.models`;
- :func:`from_torch` (``torch.nn.Module`` -> layerkit) for the modules that have a layerkit
  twin (and the modules :func:`to_torch` returns); the first module without one raises
  ``TypeError`` naming it;
- :func:`state_dict` / :func:`load_state_dict`: the parameters (and batch-norm running
  statistics) as numpy arrays under PyTorch's names, e.g. ``"lstm.weight_ih_l0"`` for
  ``CharLSTM``'s ``"lstm.0.weight_ih"``; these two need no PyTorch.

Names and layouts: layerkit already uses PyTorch's layouts (``weight`` (out, in, *k), gate
order i, f, g, o), so conversion copies arrays and renames only the recurrent ones
(``weight_ih`` -> ``weight_ih_l0``; a ``Bidirectional`` layer's right-to-left weights ->
``weight_ih_l0_reverse``). Every array keeps its dtype (float64 stays float64).

The torch twins behave like their layerkit originals: a recurrent layer is a subclass of
``torch.nn.RNN``/``LSTM``/``GRU`` (``batch_first``) whose ``forward(x, h0=None, c0=None,
lengths=None)`` returns ``(y, h_T[, c_T])`` with states ``(N, H)`` as layerkit does, padded
steps zeroed; ``Sequential`` passes on the ``y`` of such a tuple; the models take the same
arguments (``CharLSTM``'s twin is stateless: pass ``h0``, ``c0`` to continue a stream).

PyTorch is imported only when a function that builds torch modules is called; without it they
raise ``ImportError`` naming the ``crosscheck`` extra.
"""

from __future__ import annotations

import functools

import numpy as np

from . import layers as L
from .models.language import CharLSTM
from .models.sequence import Seq2Seq, SequenceClassifier

__all__ = ["to_torch", "from_torch", "state_dict", "load_state_dict", "torch_names"]

_RECURRENT = (L.RNN, L.LSTM, L.GRU)
_RECURRENT_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("layerkit.interop needs PyTorch, which the crosscheck extra installs: "
                          "pip install \".[crosscheck]\" (torch==2.13.0, CPU)") from None
    return torch


# -- names ------------------------------------------------------------------------------------

def _recurrent_names(layer, prefix: str, lk_prefix: str, suffix: str) -> list:
    return [(f"{prefix}{k}_l{suffix}", layer, k, lk_prefix + k) for k in _RECURRENT_KEYS
            if k in layer.params]


def _entries(model, prefix: str = "", lk_prefix: str = "") -> list:
    """(torch name, owner, key, layerkit name) of every array, in PyTorch's state_dict order;
    ``owner.params[key]`` holds it (``key`` names an attribute for running statistics)."""
    if isinstance(model, _RECURRENT):
        return _recurrent_names(model, prefix, lk_prefix, "0")
    if isinstance(model, L.Bidirectional):
        f, b = model.forward_layer, model.backward_layer
        return (_recurrent_names(f, prefix, lk_prefix + "forward_layer.", "0")
                + _recurrent_names(b, prefix, lk_prefix + "backward_layer.", "0_reverse"))
    if isinstance(model, CharLSTM):
        out = _entries(model.embedding, prefix + "embedding.", lk_prefix + "embedding.")
        for i, lstm in enumerate(model.lstms):
            out += _recurrent_names(lstm, prefix + "lstm.", f"{lk_prefix}lstm.{i}.", str(i))
        return out + _entries(model.head, prefix + "head.", lk_prefix + "head.")
    if isinstance(model, L.Container):
        out = []
        for label, child in _children(model):
            out += _entries(child, f"{prefix}{label}.", f"{lk_prefix}{label}.")
        return out
    out = [(prefix + k, model, k, lk_prefix + k) for k in model.params]
    if isinstance(model, (L.BatchNorm1D, L.BatchNorm2D)):
        out += [(prefix + k, model, k, None) for k in ("running_mean", "running_var")]
        out.append((prefix + "num_batches_tracked", None, None, None))
    return out


def _children(model) -> list:
    """(label, child) of a container, the labels of its dotted parameter names."""
    if isinstance(model, L.Residual):
        return [("block", model.block)] + ([] if model.projection is None
                                           else [("projection", model.projection)])
    if isinstance(model, Seq2Seq):
        labels = ("src_embedding", "encoder", "tgt_embedding", "decoder", "head")
    elif isinstance(model, SequenceClassifier):
        labels = ("embedding", "rnn", "head")
    elif isinstance(model, (L.Sequential, L.Concat)):
        return [(str(i), child) for i, child in enumerate(model)]
    else:
        raise TypeError(f"interop: no PyTorch twin for {model!r}")
    return [(label, getattr(model, label)) for label in labels]


def torch_names(model) -> dict:
    """PyTorch's name of every layerkit parameter of ``model``: ``{layerkit name: torch name}``."""
    return {lk: t for t, _, _, lk in _entries(model) if lk is not None}


def _array(owner, key):
    return owner.params[key] if key in owner.params else getattr(owner, key)


def state_dict(model) -> dict:
    """The parameters of ``model`` (and batch-norm running statistics) as numpy arrays under
    PyTorch's names, in PyTorch's order; ``num_batches_tracked`` (not counted by layerkit) is
    0. Arrays are copies."""
    return {name: (np.array(0, dtype=np.int64) if owner is None else _array(owner, key).copy())
            for name, owner, key, _ in _entries(model)}


def load_state_dict(model, torch_state_dict) -> None:
    """Copy a PyTorch ``state_dict`` (tensors or arrays, PyTorch's names) into ``model`` in place.

    Every name, shape and dtype is checked first, so on ``ValueError`` nothing was changed;
    ``num_batches_tracked`` is ignored. Arrays are converted to the model's dtype only when the
    kinds agree (float into float)."""
    who = f"load_state_dict({type(model).__name__})"
    given = {k: _numpy(v) for k, v in dict(torch_state_dict).items()}
    entries = [e for e in _entries(model) if e[1] is not None]
    wanted = {name for name, *_ in entries}
    problems = []
    missing = [n for n in wanted if n not in given]
    unexpected = [n for n in given if n not in wanted and not n.endswith("num_batches_tracked")]
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected: {', '.join(unexpected)}")
    for name, owner, key, _ in entries:
        if name in given:
            want, got = _array(owner, key), given[name]
            if want.shape != got.shape:
                problems.append(f"{name!r}: the model has shape {want.shape}, the state_dict "
                                f"{got.shape}")
            elif got.dtype.kind != want.dtype.kind:
                problems.append(f"{name!r}: the model has dtype {want.dtype}, the state_dict "
                                f"{got.dtype}")
    if problems:
        raise ValueError(f"{who}: the state_dict does not match; nothing was loaded: "
                         + "; ".join(problems))
    for name, owner, key, _ in entries:
        _array(owner, key)[...] = given[name]


def _numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


# -- the torch twins ---------------------------------------------------------------------------

def _pack(torch, x, lengths):
    if lengths is None:
        return x
    lens = torch.as_tensor(np.asarray(lengths), dtype=torch.int64).cpu()
    return torch.nn.utils.rnn.pack_padded_sequence(x, lens, batch_first=True,
                                                   enforce_sorted=False)


def _unpack(torch, y, steps, lengths):
    if lengths is None:
        return y
    return torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=steps)[0]


@functools.lru_cache(maxsize=1)
def _twins():
    """The torch classes that mirror layerkit's (built once, when PyTorch is first needed)."""
    torch = _torch()
    nn = torch.nn

    def recurrent(base, cell: bool):
        class Twin(base):
            """``torch.nn.{base}`` with layerkit's calling convention (batch first, states
            (N, H), ``lengths``); ``bidirectional=True`` joins both directions as
            ``layerkit.Bidirectional`` does and returns y only."""

            def __init__(self, input_size, hidden_size, *, return_sequences=True,
                         bidirectional=False, **kwargs):
                super().__init__(input_size, hidden_size, batch_first=True,
                                 bidirectional=bidirectional, **kwargs)
                self.return_sequences = return_sequences

            def forward(self, x, h0=None, c0=None, lengths=None):
                steps = x.shape[1]
                state = None
                if h0 is not None or c0 is not None:
                    zeros = torch.zeros(1, x.shape[0], self.hidden_size, dtype=x.dtype)
                    h = zeros if h0 is None else h0[None]
                    state = (h, zeros if c0 is None else c0[None]) if cell else h
                y, state = super().forward(_pack(torch, x, lengths), state)
                y = _unpack(torch, y, steps, lengths)
                h = state[0] if cell else state
                if self.bidirectional:
                    return y if self.return_sequences else torch.cat([h[-2], h[-1]], dim=-1)
                y = y if self.return_sequences else h[-1]
                return (y, h[-1], state[1][-1]) if cell else (y, h[-1])
        Twin.__name__ = Twin.__qualname__ = base.__name__
        return Twin

    class Sequential(nn.Sequential):
        """``nn.Sequential`` that passes on the y of a recurrent layer's (y, states) tuple."""

        def forward(self, x):
            for module in self:
                x = module(x)
                if isinstance(x, tuple):
                    x = x[0]
            return x

    class Residual(nn.Module):
        def __init__(self, block, projection=None):
            super().__init__()
            self.block, self.projection = block, projection

        def forward(self, x):
            return self.block(x) + (x if self.projection is None else self.projection(x))

    class Concat(nn.ModuleList):
        def __init__(self, blocks, axis=1):
            super().__init__(blocks)
            self.axis = axis

        def forward(self, x):
            return torch.cat([b(x) for b in self], dim=self.axis)

    class GlobalAvgPool(nn.Module):
        def forward(self, x):
            return x.mean(dim=tuple(range(2, x.ndim)))

    class ZeroPadShortcut(nn.Module):
        """layerkit's ZeroPadShortcut: every stride-th position, zero channels around x."""

        def __init__(self, in_channels, out_channels, stride):
            super().__init__()
            self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

        def forward(self, x):
            kept = x[(slice(None), slice(None)) + (slice(None, None, self.stride),) * (x.ndim - 2)]
            lo = (self.out_channels - self.in_channels) // 2
            hi = self.out_channels - self.in_channels - lo
            return nn.functional.pad(kept, (0, 0) * (x.ndim - 2) + (lo, hi))

    class ChannelMaxPool(nn.Module):
        def __init__(self, pool_size):
            super().__init__()
            self.pool_size = pool_size

        def forward(self, x):
            k = self.pool_size
            return x.reshape(x.shape[0], x.shape[1] // k, k, *x.shape[2:]).amax(dim=2)

    def padded(base):
        class Padded(base):
            """``base`` after explicit (lo, hi) zero padding per spatial axis: layerkit's
            ``padding="same"`` where it is uneven (an even extent, or a stride)."""

            def __init__(self, *args, pads, layerkit_padding, **kwargs):
                super().__init__(*args, padding=0, **kwargs)
                self.pads, self.layerkit_padding = pads, layerkit_padding

            def forward(self, x):
                flat = [p for lo_hi in reversed(self.pads) for p in lo_hi]
                return super().forward(nn.functional.pad(x, flat))
        Padded.__name__ = Padded.__qualname__ = "Padded" + base.__name__
        return Padded

    class CharLSTMTwin(nn.Module):
        def __init__(self, vocab_size, embedding_dim, hidden_size, num_layers):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, embedding_dim)
            self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers, batch_first=True)
            self.head = nn.Linear(hidden_size, vocab_size)

        def forward(self, ids, h0=None, c0=None):
            state = None
            if h0 is not None or c0 is not None:
                zeros = torch.zeros(self.lstm.num_layers, ids.shape[0], self.lstm.hidden_size,
                                    dtype=self.head.weight.dtype)
                state = (zeros if h0 is None else h0, zeros if c0 is None else c0)
            return self.head(self.lstm(self.embedding(ids), state)[0])

    class Seq2SeqTwin(nn.Module):
        def __init__(self, src_vocab, tgt_vocab, embedding_dim, hidden_size):
            super().__init__()
            self.src_embedding = nn.Embedding(src_vocab, embedding_dim)
            self.encoder = lstm(embedding_dim, hidden_size, return_sequences=False)
            self.tgt_embedding = nn.Embedding(tgt_vocab, embedding_dim)
            self.decoder = lstm(embedding_dim, hidden_size)
            self.head = nn.Linear(hidden_size, tgt_vocab)

        def forward(self, src, tgt_in, src_lengths=None):
            _, h, c = self.encoder(self.src_embedding(src), lengths=src_lengths)
            y = self.decoder(self.tgt_embedding(tgt_in), h, c)[0]
            return self.head(y)

    class SequenceClassifierTwin(nn.Module):
        def __init__(self, vocab_size, num_classes, embedding_dim, hidden_size, cell):
            super().__init__()
            self.cell = cell
            self.embedding = nn.Embedding(vocab_size, embedding_dim)
            self.rnn = {"lstm": lstm, "rnn": rnn, "gru": gru}[cell](
                embedding_dim, hidden_size, return_sequences=False)
            self.head = nn.Linear(hidden_size, num_classes)

        def forward(self, ids, lengths=None):
            return self.head(self.rnn(self.embedding(ids), lengths=lengths)[0])

    rnn, lstm, gru = recurrent(nn.RNN, False), recurrent(nn.LSTM, True), recurrent(nn.GRU, False)
    for cls, name in ((CharLSTMTwin, "CharLSTM"), (Seq2SeqTwin, "Seq2Seq"),
                      (SequenceClassifierTwin, "SequenceClassifier")):
        cls.__name__ = cls.__qualname__ = name
    return dict(torch=torch, RNN=rnn, LSTM=lstm, GRU=gru, Sequential=Sequential,
                Residual=Residual, Concat=Concat, GlobalAvgPool=GlobalAvgPool,
                ChannelMaxPool=ChannelMaxPool, ZeroPadShortcut=ZeroPadShortcut,
                CharLSTM=CharLSTMTwin,
                Padded={1: padded(nn.Conv1d), 2: padded(nn.Conv2d), 3: padded(nn.Conv3d)},
                Seq2Seq=Seq2SeqTwin, SequenceClassifier=SequenceClassifierTwin)


def _conv_to_torch(t, layer, where: str):
    nn = t["torch"].nn
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[layer.ndim]
    pads = layer.geometry.padding
    common = dict(stride=layer.stride, dilation=layer.dilation, groups=layer.groups,
                  bias=layer.bias)
    if all(lo == hi for lo, hi in pads):
        return cls(layer.in_channels, layer.out_channels, layer.kernel_size,
                   padding=tuple(lo for lo, _ in pads), **common)
    return t["Padded"][layer.ndim](layer.in_channels, layer.out_channels, layer.kernel_size,
                                   pads=tuple(pads), layerkit_padding=layer.padding, **common)


def _module(t, layer, where: str):
    """The torch twin of ``layer`` (architecture only; weights are loaded afterwards)."""
    nn = t["torch"].nn
    simple = {L.ReLU: nn.ReLU, L.Sigmoid: nn.Sigmoid, L.Tanh: nn.Tanh, L.Identity: nn.Identity,
              L.GlobalAvgPool: t["GlobalAvgPool"]}
    if type(layer) in simple:
        return simple[type(layer)]()
    if isinstance(layer, L.LeakyReLU):
        return nn.LeakyReLU(layer.negative_slope)
    if isinstance(layer, L.Softmax):
        return nn.Softmax(dim=layer.axis)
    if isinstance(layer, L.LogSoftmax):
        return nn.LogSoftmax(dim=layer.axis)
    if isinstance(layer, L.Dropout):
        return nn.Dropout(layer.p)
    if isinstance(layer, L.Flatten):
        return nn.Flatten(layer.start_dim, -1)
    if isinstance(layer, L.Linear):
        return nn.Linear(layer.in_features, layer.out_features, bias="bias" in layer.params)
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D)):
        return _conv_to_torch(t, layer, where)
    if isinstance(layer, L.ConvTranspose2D):
        return nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                  stride=layer.stride, padding=layer.padding,
                                  output_padding=layer.output_padding, dilation=layer.dilation,
                                  groups=layer.groups, bias=layer.bias)
    pools = {L.MaxPool1D: nn.MaxPool1d, L.MaxPool2D: nn.MaxPool2d, L.MaxPool3D: nn.MaxPool3d}
    if type(layer) in pools:
        return pools[type(layer)](layer.kernel_size, layer.stride, layer.padding,
                                  layer.dilation, return_indices=layer.return_indices)
    pools = {L.AvgPool1D: nn.AvgPool1d, L.AvgPool2D: nn.AvgPool2d, L.AvgPool3D: nn.AvgPool3d}
    if type(layer) in pools:
        return pools[type(layer)](layer.kernel_size, layer.stride, layer.padding)
    if isinstance(layer, L.MaxUnpool2D):
        return nn.MaxUnpool2d(layer.kernel_size, layer.stride, layer.padding)
    if isinstance(layer, L.ChannelMaxPool):
        return t["ChannelMaxPool"](layer.pool_size)
    if isinstance(layer, L.ZeroPadShortcut):
        return t["ZeroPadShortcut"](layer.in_channels, layer.out_channels, layer.stride)
    if isinstance(layer, (L.BatchNorm1D, L.BatchNorm2D)):
        cls = nn.BatchNorm1d if isinstance(layer, L.BatchNorm1D) else nn.BatchNorm2d
        return cls(layer.num_features, eps=layer.eps, momentum=layer.momentum,
                   affine=layer.affine)
    if isinstance(layer, L.Embedding):
        return nn.Embedding(layer.num_embeddings, layer.embedding_dim,
                            padding_idx=layer.padding_idx)
    if isinstance(layer, _RECURRENT):
        kwargs = {"nonlinearity": layer.nonlinearity} if isinstance(layer, L.RNN) else {}
        return t[type(layer).__name__](layer.input_size, layer.hidden_size,
                                       return_sequences=layer.return_sequences,
                                       bias=layer.bias, **kwargs)
    if isinstance(layer, L.Bidirectional):
        f = layer.forward_layer
        kwargs = {"nonlinearity": f.nonlinearity} if isinstance(f, L.RNN) else {}
        return t[type(f).__name__](f.input_size, f.hidden_size, bidirectional=True,
                                   return_sequences=f.return_sequences, bias=f.bias, **kwargs)
    if isinstance(layer, CharLSTM):
        return t["CharLSTM"](layer.vocab_size, layer.embedding_dim, layer.hidden_size,
                             layer.num_layers)
    if isinstance(layer, Seq2Seq):
        return t["Seq2Seq"](layer.src_vocab, layer.tgt_vocab, layer.embedding_dim,
                            layer.hidden_size)
    if isinstance(layer, SequenceClassifier):
        return t["SequenceClassifier"](layer.vocab_size, layer.num_classes,
                                       layer.embedding_dim, layer.hidden_size, layer.cell)
    if isinstance(layer, L.Residual):
        return t["Residual"](_module(t, layer.block, where + "block."),
                             None if layer.projection is None
                             else _module(t, layer.projection, where + "projection."))
    if isinstance(layer, L.Concat):
        return t["Concat"]([_module(t, b, f"{where}{i}.") for i, b in enumerate(layer)],
                           axis=layer.axis)
    if isinstance(layer, L.Sequential):
        return t["Sequential"](*[_module(t, child, f"{where}{label}.")
                                 for label, child in _children(layer)])
    raise TypeError(f"to_torch: no PyTorch twin for {layer!r}"
                    + (f" at {where[:-1]!r}" if where else ""))


def to_torch(model):
    """A ``torch.nn.Module`` with the architecture and weights of ``model`` (a layer, container
    or model of :mod:`layerkit.models`), in the dtype of its parameters and in the same
    training/evaluation mode. Raises TypeError naming the first layer without a twin."""
    t = _twins()
    module = _module(t, model, "")
    dtype = next((p.dtype for p in model.params.values()), np.dtype(np.float32))
    module = module.to(getattr(t["torch"], np.dtype(dtype).name))
    torch = t["torch"]
    module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                            for k, v in state_dict(model).items()}, strict=True)
    module.train(bool(getattr(model, "training", True)))
    return module


# -- from torch --------------------------------------------------------------------------------

def _from_conv(t, m, dt):
    nn = t["torch"].nn
    cls = {nn.Conv1d: L.Conv1D, nn.Conv2d: L.Conv2D, nn.Conv3d: L.Conv3D}[type(m)]
    if m.padding_mode != "zeros":
        raise TypeError(f"from_torch: no layerkit twin for {m!r} (padding_mode "
                        f"{m.padding_mode!r})")
    return cls(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride,
               padding=m.padding, dilation=m.dilation, groups=m.groups, bias=m.bias is not None,
               dtype=dt)


def _from_recurrent(t, m, dt, where):
    nn = t["torch"].nn
    base = next(b for b in (nn.LSTM, nn.GRU, nn.RNN) if isinstance(m, b))
    if m.num_layers != 1 or not m.batch_first or m.proj_size:
        raise TypeError(f"from_torch: no layerkit twin for {m!r} at {where!r} (layerkit's "
                        f"recurrent layers are one layer, batch_first=True, no proj_size)")
    cls = {nn.LSTM: L.LSTM, nn.GRU: L.GRU, nn.RNN: L.RNN}[base]
    kwargs = {"nonlinearity": m.nonlinearity} if base is nn.RNN else {}
    layer = cls(m.input_size, m.hidden_size, return_sequences=getattr(m, "return_sequences",
                                                                        True),
                bias=m.bias, dtype=dt, **kwargs)
    return L.Bidirectional(layer) if m.bidirectional else layer


def _layer(t, m, where: str):
    """The layerkit twin of torch module ``m`` (architecture only)."""
    torch = t["torch"]
    nn = torch.nn
    params = list(m.parameters())
    dt = np.dtype(str(params[0].dtype).replace("torch.", "")) if params else np.float32
    simple = {nn.ReLU: L.ReLU, nn.Sigmoid: L.Sigmoid, nn.Tanh: L.Tanh, nn.Identity: L.Identity,
              t["GlobalAvgPool"]: L.GlobalAvgPool}
    if type(m) in simple:
        return simple[type(m)]()
    if type(m) is nn.LeakyReLU:
        return L.LeakyReLU(m.negative_slope)
    if type(m) in (nn.Softmax, nn.LogSoftmax):
        return (L.Softmax if type(m) is nn.Softmax else L.LogSoftmax)(
            axis=-1 if m.dim is None else m.dim)
    if type(m) is nn.Dropout:
        return L.Dropout(m.p)
    if type(m) is nn.Flatten and m.end_dim == -1:
        return L.Flatten(m.start_dim)
    if type(m) is nn.Linear:
        return L.Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=dt)
    if type(m) in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
        return _from_conv(t, m, dt)
    padded = {cls: n for n, cls in t["Padded"].items()}
    if type(m) in padded:
        cls = {1: L.Conv1D, 2: L.Conv2D, 3: L.Conv3D}[padded[type(m)]]
        return cls(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride,
                   padding=m.layerkit_padding, dilation=m.dilation, groups=m.groups,
                   bias=m.bias is not None, dtype=dt)
    if type(m) is nn.ConvTranspose2d and m.padding_mode == "zeros":
        return L.ConvTranspose2D(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride,
                                 padding=m.padding, output_padding=m.output_padding,
                                 dilation=m.dilation, groups=m.groups, bias=m.bias is not None,
                                 dtype=dt)
    pools = {nn.MaxPool1d: L.MaxPool1D, nn.MaxPool2d: L.MaxPool2D, nn.MaxPool3d: L.MaxPool3D}
    if type(m) in pools and not m.ceil_mode:
        return pools[type(m)](m.kernel_size, stride=m.stride, padding=m.padding,
                              dilation=m.dilation, return_indices=m.return_indices)
    pools = {nn.AvgPool1d: L.AvgPool1D, nn.AvgPool2d: L.AvgPool2D, nn.AvgPool3d: L.AvgPool3D}
    if (type(m) in pools and not m.ceil_mode and m.count_include_pad
            and getattr(m, "divisor_override", None) is None):
        return pools[type(m)](m.kernel_size, stride=m.stride, padding=m.padding)
    if type(m) is nn.MaxUnpool2d:
        return L.MaxUnpool2D(m.kernel_size, stride=m.stride, padding=m.padding)
    if type(m) is t["ChannelMaxPool"]:
        return L.ChannelMaxPool(m.pool_size)
    if type(m) is t["ZeroPadShortcut"]:
        return L.ZeroPadShortcut(m.in_channels, m.out_channels, stride=m.stride)
    if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d) and m.track_running_stats:
        cls = L.BatchNorm1D if type(m) is nn.BatchNorm1d else L.BatchNorm2D
        dt = np.dtype(str(m.running_mean.dtype).replace("torch.", ""))
        return cls(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine, dtype=dt)
    if type(m) is nn.Embedding and m.max_norm is None:
        return L.Embedding(m.num_embeddings, m.embedding_dim, padding_idx=m.padding_idx,
                           dtype=dt)
    if isinstance(m, (nn.RNN, nn.LSTM, nn.GRU)) and type(m) in (
            nn.RNN, nn.LSTM, nn.GRU, t["RNN"], t["LSTM"], t["GRU"]):
        return _from_recurrent(t, m, dt, where or "the module")
    if type(m) is t["CharLSTM"]:
        return CharLSTM(m.embedding.num_embeddings, embedding_dim=m.embedding.embedding_dim,
                        hidden_size=m.lstm.hidden_size, num_layers=m.lstm.num_layers,
                        stateful=False, dtype=dt)
    if type(m) is t["Seq2Seq"]:
        return Seq2Seq(m.src_embedding.num_embeddings, m.tgt_embedding.num_embeddings,
                       embedding_dim=m.src_embedding.embedding_dim,
                       hidden_size=m.encoder.hidden_size, dtype=dt)
    if type(m) is t["SequenceClassifier"]:
        return SequenceClassifier(m.embedding.num_embeddings, m.head.out_features,
                                  embedding_dim=m.embedding.embedding_dim,
                                  hidden_size=m.rnn.hidden_size, cell=m.cell, dtype=dt)
    if type(m) is t["Residual"]:
        return L.Residual(_layer(t, m.block, where + "block."),
                          None if m.projection is None
                          else _layer(t, m.projection, where + "projection."))
    if type(m) is t["Concat"]:
        return L.Concat(*[_layer(t, b, f"{where}{i}.") for i, b in enumerate(m)], axis=m.axis)
    if type(m) in (nn.Sequential, t["Sequential"]):
        children = [_layer(t, c, f"{where}{name}.") for name, c in m.named_children()]
        if children and all(name.isdigit() for name, _ in m.named_children()):
            return L.Sequential(*children)
    raise TypeError(f"from_torch: no layerkit twin for {type(m).__name__} ({m!r})"
                    + (f" at {where[:-1]!r}" if where else ""))


def from_torch(module):
    """A layerkit model with the architecture and weights of a ``torch.nn.Module`` that has a
    layerkit twin (the layers above, ``nn.Sequential`` of them, and what :func:`to_torch`
    returns), in the same training/evaluation mode.

    A ``Sequential`` of LeNet-5's or VGG-small's layers comes back as a plain ``Sequential``
    (no ``spec``); a twin of ``CharLSTM`` comes back stateless. Raises TypeError naming the
    first module (and its position) that has no twin."""
    t = _twins()
    model = _layer(t, module, "")
    load_state_dict(model, module.state_dict())
    model.train(bool(module.training))
    return model
