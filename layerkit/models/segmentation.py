"""SegNet-style encoder-decoder for per-pixel classification: the decoder upsamples with the
encoder's max-pooling indices (or, for comparison, with transposed convolutions)."""

from __future__ import annotations

import numpy as np

from ..grad_mode import no_grad
from ..layers.activations import ReLU
from ..layers.containers import Sequential
from ..layers.conv import Conv2D, ConvTranspose2D
from ..layers.normalization import BatchNorm2D
from ..layers.pooling import MaxPool2D, MaxUnpool2D
from ..validation import check_array, one_of, positive_int
from .base import Model, check_seed, dtype_name, sub_seed

DECODERS = ("unpool", "transpose")


def _conv_bn_relu(c_in: int, c_out: int, dt: str, seed, dilation: int = 1) -> Sequential:
    return Sequential(Conv2D(c_in, c_out, 3, padding=dilation, dilation=dilation, bias=False,
                             dtype=dt, seed=seed),
                      BatchNorm2D(c_out, dtype=dt), ReLU())


class SegNet(Model):
    r"""Encoder-decoder that gives class logits at every pixel (Badrinarayanan et al. 2017).

    With widths c_1 … c_L (``channels``) and B = ``bottleneck`` extra blocks:

        encoder level l:  z_l = CBR(z_{l−1}) (c_l channels),  (p_l, idx_l) = MaxPool2D(2)(z_l)
        bottleneck:       b = CBR_{2^{B−1}} ∘ … ∘ CBR_2 ∘ CBR_1 (p_L) (c_L channels; CBR_d is
                          dilated by d, so the bottleneck sees whole digits)
        decoder level l:  u_l = MaxUnpool2D(2)(·, idx_l)   ("unpool": the max goes back to where
                          it came from, zeros elsewhere)   or   ConvTranspose2D(c_l, c_l, 2,
                          stride=2) - BN - ReLU   ("transpose": a learned upsampling),
                          then CBR to c_{l−1} channels (c_0 := c_1 at the last level)
        logits = Conv2D(c_1, K, 1)(decoder output)

    CBR = Conv2D(3 × 3, padding 1 (d when dilated by d), no bias: BN's β takes its place) -
    BatchNorm2D - ReLU (the transposed convolution has no bias either). Train with
    ``CrossEntropy(axis=1)`` (a softmax over the K classes at every pixel).

    Parameters
    ----------
    in_channels, num_classes : int
    channels : list of int
        Widths of the encoder levels. The input is padded with zeros (below and right) to
        H and W divisible by 2^len(channels), and the logits cropped back to H × W.
    bottleneck : int
        CBR blocks at the lowest resolution, dilated 1, 2, 4, …: block i widens the receptive
        field by 2^L · 2 · 2^i pixels.
    decoder : {"unpool", "transpose"}
    dtype, seed

    Shape
    -----
    x (N, C, H, W) -> logits (N, K, H, W).

    Notes
    -----
    backward(δ) runs the decoder in reverse; MaxUnpool2D's backward gathers δ at the pooled
    positions (∂L/∂u[i] = δ[idx[i]]), which is then what MaxPool2D's backward scatters back, and
    each level's encoder and decoder paths meet there. Returns ∂L/∂x, or None when
    ``needs_input_grad`` is False (the default: the images are data).
    """

    builder_name = "segnet"

    def __init__(self, *, in_channels: int = 1, num_classes: int = 11, channels=(16, 32, 64),
                 bottleneck: int = 2, decoder: str = "unpool", dtype=np.float32, seed=0):
        who = "SegNet"
        self.training, self._cache = True, None
        self.in_channels = positive_int(who, "in_channels", in_channels)
        self.num_classes = positive_int(who, "num_classes", num_classes)
        if isinstance(channels, (str, bytes)) or not hasattr(channels, "__iter__"):
            raise ValueError(f"{who}: channels must be a list of positive integers, got "
                             f"{channels!r}")
        self.channels = [positive_int(who, "channels[i]", c) for c in channels]
        if not self.channels:
            raise ValueError(f"{who}: channels must list at least one level, got []")
        if isinstance(bottleneck, bool) or not isinstance(bottleneck, int) or bottleneck < 0:
            raise ValueError(f"{who}: bottleneck must be a non-negative integer, got "
                             f"{bottleneck!r}")
        self.bottleneck = bottleneck
        self.decoder = one_of(who, "decoder", decoder, DECODERS)
        dt = dtype_name(who, dtype)
        seed = check_seed(who, seed)
        count = iter(range(10**6))
        s = lambda: sub_seed(seed, next(count))
        L, widths = len(self.channels), self.channels
        self.enc = [_conv_bn_relu(self.in_channels if l == 0 else widths[l - 1], widths[l], dt,
                                  s()) for l in range(L)]
        self.pools = [MaxPool2D(2, return_indices=True) for _ in range(L)]
        self.mid = Sequential(*[_conv_bn_relu(widths[-1], widths[-1], dt, s(), 2 ** i)
                                for i in range(bottleneck)]) if bottleneck else None
        if self.decoder == "unpool":
            self.ups = [MaxUnpool2D(2) for _ in range(L)]
        else:
            self.ups = [Sequential(ConvTranspose2D(c, c, 2, stride=2, bias=False, dtype=dt,
                                                   seed=s()),
                                   BatchNorm2D(c, dtype=dt), ReLU()) for c in widths]
        self.dec = [_conv_bn_relu(widths[l], widths[max(l - 1, 0)], dt, s()) for l in range(L)]
        self.classifier = Conv2D(widths[0], self.num_classes, 1, dtype=dt, seed=s())
        self.enc[0].needs_input_grad = False
        self._children = ([(f"enc{l}", m) for l, m in enumerate(self.enc)]
                          + [(f"pool{l}", p) for l, p in enumerate(self.pools)]
                          + ([("mid", self.mid)] if self.mid is not None else [])
                          + [(f"up{l}", m) for l, m in enumerate(self.ups)]
                          + [(f"dec{l}", m) for l, m in enumerate(self.dec)]
                          + [("classifier", self.classifier)])
        self._record(in_channels=self.in_channels, num_classes=self.num_classes,
                     channels=list(self.channels), bottleneck=bottleneck,
                     decoder=self.decoder, dtype=dt, seed=seed)

    @property
    def needs_input_grad(self) -> bool:
        """False (default): backward skips ∂L/∂x and returns None."""
        return self.enc[0].needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, value: bool) -> None:
        self.enc[0].needs_input_grad = bool(value)

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = repr(self)
        check_array(who, x, ("N", self.in_channels, "H", "W"))
        n, c, h, w = x.shape
        scale = 2 ** len(self.channels)
        hp, wp = -(-h // scale) * scale, -(-w // scale) * scale
        if (hp, wp) != (h, w):                  # zeros below and right, cropped off the logits
            padded = np.zeros((n, c, hp, wp), dtype=x.dtype)
            padded[:, :, :h, :w] = x
            x = padded
        indices = []
        for enc, pool in zip(self.enc, self.pools):
            x, idx = pool.forward(enc.forward(x))
            indices.append(idx)
        if self.mid is not None:
            x = self.mid.forward(x)
        for l in range(len(self.channels) - 1, -1, -1):
            up = self.ups[l]
            x = up.forward(x, indices[l]) if self.decoder == "unpool" else up.forward(x)
            x = self.dec[l].forward(x)
        self._cache = (n, h, w, hp, wp)
        return np.ascontiguousarray(self.classifier.forward(x)[:, :, :h, :w])

    def backward(self, dlogits: np.ndarray):
        n, h, w, hp, wp = self.saved()
        self.check_dy(dlogits, (n, self.num_classes, h, w))
        d = dlogits
        if (hp, wp) != (h, w):
            d = np.zeros(dlogits.shape[:2] + (hp, wp), dtype=dlogits.dtype)
            d[:, :, :h, :w] = dlogits
        d = self.classifier.backward(d)
        for l in range(len(self.channels)):
            d = self.ups[l].backward(self.dec[l].backward(d))
        if self.mid is not None:
            d = self.mid.backward(d)
        for l in range(len(self.channels) - 1, -1, -1):
            d = self.enc[l].backward(self.pools[l].backward(d))
        return None if d is None else np.ascontiguousarray(d[:, :, :h, :w])

    def predict(self, x: np.ndarray, *, batch_size: int = 100) -> np.ndarray:
        """The arg-max class of every pixel, (N, H, W) int64, ``batch_size`` images at a time,
        under :func:`layerkit.no_grad`."""
        batch_size = positive_int("SegNet.predict", "batch_size", batch_size)
        with no_grad():
            out = [np.argmax(self.forward(x[i:i + batch_size]), axis=1)
                   for i in range(0, len(x), batch_size)]
        return np.concatenate(out).astype(np.int64)
