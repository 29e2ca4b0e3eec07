"""A deep convolutional GAN (Radford et al. 2016) for 28x28 one-channel images: a generator of
transposed convolutions and a discriminator of strided convolutions, in one model."""

from __future__ import annotations

import numpy as np

from ..layers.activations import LeakyReLU, ReLU, Tanh
from ..layers.containers import Sequential
from ..layers.conv import Conv2D, ConvTranspose2D
from ..layers.linear import Flatten, Linear
from ..layers.minibatch_std import MinibatchStd
from ..layers.normalization import BatchNorm2D
from ..layers.reshape import Reshape
from ..validation import check_array, flag, positive_int
from .base import Model, check_seed, dtype_name, sizes, sub_seed

__all__ = ["DCGAN", "dcgan_normal"]


def dcgan_normal(shape, *, rng=None, dtype=np.float32):
    """The DCGAN paper's initialisation: every weight drawn from N(0, 0.02²)."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return (0.02 * rng.standard_normal(shape)).astype(dtype)


class DCGAN(Model):
    r"""DCGAN for (N, 1, 28, 28) images scaled to [−1, 1]: ``generator`` G and
    ``discriminator`` D, trained against each other (``layerkit train dcgan``).

    G: z (N, Z) - Reshape(Z, 1, 1) - ConvT(Z, 2F, 7) - BN - ReLU [7x7]
       - ConvT(2F, F, 4, stride 2, padding 1) - BN - ReLU [14x14]
       - ConvT(F, 1, 4, stride 2, padding 1) - Tanh [28x28]
    D: x (N, 1, 28, 28) - Conv(1, F, 4, stride 2, padding 1) - LeakyReLU(0.2) [14x14]
       - Conv(F, 2F, 4, stride 2, padding 1) - BN - LeakyReLU(0.2) [7x7]
       - Flatten - Linear(2F·49, 1): one logit per image, "real" when positive.
       With ``minibatch_std``, a :class:`~layerkit.MinibatchStd` before Flatten adds one 7x7
       channel holding the batch's mean standard deviation (Linear((2F + 1)·49, 1)): D can
       see how varied a batch is, and so penalise a generator that draws few kinds of digit.

    Weights start from N(0, 0.02²) (the paper's choice), biases at 0, BatchNorm at γ = 1, β = 0.
    A convolution followed by BatchNorm has no bias: BatchNorm subtracts the mean, so the bias
    would have no effect (its gradient is 0); β takes its place.

    Parameters
    ----------
    latent_dim : int
        Z, the size of the noise vector z ~ N(0, I).
    features : int
        F, the channel width.
    minibatch_std : bool, default False
        Give D the minibatch-standard-deviation feature (see above).
    dtype, seed

    Attributes
    ----------
    generator, discriminator : Sequential
        Each trained by its own optimizer (``Adam(model.generator, ...)``). ``params`` of the
        whole model: ``generator.<i>.*`` and ``discriminator.<i>.*``.

    Shape
    -----
    ``forward(z) -> images``: z (N, Z) -> G(z) (N, 1, 28, 28) in (−1, 1). ``discriminate(x)``:
    (N, 1, 28, 28) -> logits (N, 1). ``generate(n, seed=...)``: n images in [0, 1].

    Notes
    -----
    backward(δ) of forward is the generator's: δ through Tanh, the transposed convolutions
    (each one's backward is a strided convolution of δ) and BatchNorm in training mode; returns
    ∂L/∂z (N, Z). The generator's loss −log D(G(z)) reaches it as D's input gradient:
    ``model.generator.backward(model.discriminator.backward(dlogits))``.

    The BatchNorm running statistics are not parameters, so a checkpoint does not store them:
    sample in training mode (each batch normalised by its own statistics, as the DCGAN
    reference code samples), which depends on the parameters only and so is restored exactly.
    """

    builder_name = "dcgan"

    def __init__(self, *, latent_dim: int = 64, features: int = 32, minibatch_std: bool = False,
                 dtype=np.float32, seed=0):
        who = "DCGAN"
        self.training, self._cache = True, None
        self.latent_dim, self.features = sizes(who, latent_dim=latent_dim, features=features)
        dt = dtype_name(who, dtype)
        seed = check_seed(who, seed)
        Z, F = self.latent_dim, self.features
        self.minibatch_std = flag(who, "minibatch_std", minibatch_std)
        std = [MinibatchStd()] if self.minibatch_std else []
        s = lambda i: sub_seed(seed, i)
        w = dict(dtype=dt, weight_init=dcgan_normal)
        self.generator = Sequential(
            Reshape(Z, 1, 1),
            ConvTranspose2D(Z, 2 * F, 7, bias=False, seed=s(0), **w), BatchNorm2D(2 * F, dtype=dt), ReLU(),
            ConvTranspose2D(2 * F, F, 4, stride=2, padding=1, bias=False, seed=s(1), **w),
            BatchNorm2D(F, dtype=dt), ReLU(),
            ConvTranspose2D(F, 1, 4, stride=2, padding=1, seed=s(2), **w), Tanh())
        self.discriminator = Sequential(
            Conv2D(1, F, 4, stride=2, padding=1, seed=s(3), **w), LeakyReLU(0.2),
            Conv2D(F, 2 * F, 4, stride=2, padding=1, bias=False, seed=s(4), **w),
            BatchNorm2D(2 * F, dtype=dt), LeakyReLU(0.2), *std,
            Flatten(), Linear((2 * F + len(std)) * 7 * 7, 1, seed=s(5), **w))
        self._children = [("generator", self.generator), ("discriminator", self.discriminator)]
        self._record(latent_dim=Z, features=F, minibatch_std=self.minibatch_std, dtype=dt,
                     seed=seed)

    def forward(self, z: np.ndarray) -> np.ndarray:
        check_array(repr(self), z, ("N", self.latent_dim), name="z")
        y = self.generator.forward(z)
        self._cache = True
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.saved()
        return self.generator.backward(dy)

    def discriminate(self, x: np.ndarray) -> np.ndarray:
        """D's logits (N, 1) for images x (N, 1, 28, 28) in [−1, 1]."""
        check_array(repr(self), x, ("N", 1, 28, 28))
        return self.discriminator.forward(x)

    def noise(self, n: int, seed=None) -> np.ndarray:
        """z ~ N(0, I) of shape (n, Z) in the parameters' dtype, from ``default_rng(seed)``."""
        n = positive_int(repr(self), "n", n)
        dt = self.generator.params["1.weight"].dtype
        return np.random.default_rng(seed).standard_normal((n, self.latent_dim)).astype(dt)

    def generate(self, n: int, *, seed=None, batch_size: int = 100) -> np.ndarray:
        """n images (n, 1, 28, 28) in [0, 1]: (G(z) + 1) / 2, ``batch_size`` at a time, in
        training mode (batch statistics; see the Notes). Leaves the running statistics and a
        pending backward's caches as they were."""
        batch_size = positive_int(repr(self), "batch_size", batch_size)
        z = self.noise(n, seed)
        mode = self.training
        norms = [layer for layer in self.generator if isinstance(layer, BatchNorm2D)]
        stats = [(bn.running_mean.copy(), bn.running_var.copy()) for bn in norms]
        with self._caches_kept():
            saved = [(layer, layer._cache) for layer in self.generator]
            self.generator.train()
            try:
                out = [self.generator.forward(z[i:i + batch_size])
                       for i in range(0, n, batch_size)]
            finally:
                self.generator.train(mode)
                for layer, cache in saved:
                    layer._cache = cache
                for bn, (mean, var) in zip(norms, stats):
                    bn.running_mean[...], bn.running_var[...] = mean, var
        return (np.concatenate(out) + 1) / 2
