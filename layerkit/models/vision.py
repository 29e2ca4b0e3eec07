"""Image classifiers: LeNet-5 and a small VGG (conv3-conv3-pool blocks), images to logits."""

from __future__ import annotations

import numpy as np

from ..layers.activations import ReLU
from ..layers.containers import Sequential
from ..layers.conv import Conv2D
from ..layers.linear import Flatten, Linear
from ..layers.pooling import MaxPool2D
from ..layers.softmax import softmax
from ..validation import positive_int
from .base import HasSpec, check_seed, dtype_name, sub_seed


class ImageClassifier(HasSpec, Sequential):
    """A :class:`Sequential` that maps images (N, C, H, W) to class logits (N, K), with a spec.

    ``forward`` returns logits; train them with ``CrossEntropy`` (softmax + negative
    log-likelihood in one stable step). ``predict_proba(x)`` is the softmax of the logits,
    ``predict(x)`` the arg max.
    """

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities softmax(forward(x)), shape (N, K), rows summing to 1."""
        return softmax(self.forward(x), axis=-1)

    def predict(self, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Predicted class ids (N,), int64, computed ``batch_size`` images at a time."""
        batch_size = positive_int("predict", "batch_size", batch_size)
        out = [np.argmax(self.forward(x[i:i + batch_size]), axis=-1)
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def lenet5(*, num_classes: int = 10, in_channels: int = 1, dtype=np.float32, seed=0):
    """LeNet-5 (LeCun et al. 1998, with ReLU and max pooling) for 28×28 images.

    Conv2D(C, 6, 5, padding=2) - ReLU - MaxPool2D(2) - Conv2D(6, 16, 5) - ReLU - MaxPool2D(2) -
    Flatten - Linear(400, 120) - ReLU - Linear(120, 84) - ReLU - Linear(84, K)

    Shape
    -----
    x : (N, C, 28, 28) -> logits (N, K). 61,706 parameters for C = 1, K = 10.

    Parameters are named as in a PyTorch ``nn.Sequential`` of the same layers: ``"0.weight"``,
    ``"0.bias"``, ``"3.weight"``, ``"7.weight"``, ``"9.weight"``, ``"11.weight"`` (+ biases),
    so a PyTorch ``state_dict`` copies over by name.

    The first Conv2D has ``needs_input_grad = False``: the input is data, so ``backward``
    accumulates every parameter gradient but skips ∂L/∂x and returns None. Set
    ``net.needs_input_grad = True`` for ``backward`` to return ∂L/∂x of shape x.shape (saliency
    maps, adversarial examples).

    Recipe (``layerkit train lenet``): ``load_mnist5k()``, :func:`layerkit.train.fit` with
    Adam lr 1e-3, batch 64, 20 epochs, seed 0, no augmentation, no clipping: >= 96.5 % test
    accuracy, as the same model and batches reach in PyTorch (``benchmarks/train_vs_torch.py``
    trains both side by side).
    """
    who = "lenet5"
    num_classes = positive_int(who, "num_classes", num_classes)
    in_channels = positive_int(who, "in_channels", in_channels)
    dt = dtype_name(who, dtype)
    seed = check_seed(who, seed)
    s = lambda i: sub_seed(seed, i)
    net = ImageClassifier(
        Conv2D(in_channels, 6, 5, padding=2, dtype=dt, seed=s(0)), ReLU(), MaxPool2D(2),
        Conv2D(6, 16, 5, dtype=dt, seed=s(1)), ReLU(), MaxPool2D(2),
        Flatten(),
        Linear(16 * 5 * 5, 120, dtype=dt, seed=s(2)), ReLU(),
        Linear(120, 84, dtype=dt, seed=s(3)), ReLU(),
        Linear(84, num_classes, dtype=dt, seed=s(4)),
    )
    net.needs_input_grad = False            # the first Conv2D's: ∂L/∂x of the data is not needed
    net.builder_name = "lenet5"
    net._record(num_classes=num_classes, in_channels=in_channels, dtype=dt, seed=seed)
    return net


def vgg_small(*, num_classes: int = 10, in_channels: int = 1, channels=(16, 32),
              hidden: int = 128, input_size: int = 28, dtype=np.float32, seed=0):
    """A small VGG-style network: per entry c of ``channels`` a block
    Conv2D(·, c, 3, padding=1) - ReLU - Conv2D(c, c, 3, padding=1) - ReLU - MaxPool2D(2),
    then Flatten - Linear(c_last · s², hidden) - ReLU - Linear(hidden, K), s = input_size // 2^B.

    Shape
    -----
    x : (N, C, input_size, input_size) -> logits (N, K). Default: 28 -> 14 -> 7,
    Linear(32·7·7 = 1568, 128).

    As in :func:`lenet5`, the first Conv2D has ``needs_input_grad = False``: ``backward``
    returns None; after ``net.needs_input_grad = True`` it returns ∂L/∂x.
    """
    who = "vgg_small"
    num_classes = positive_int(who, "num_classes", num_classes)
    in_channels = positive_int(who, "in_channels", in_channels)
    hidden = positive_int(who, "hidden", hidden)
    input_size = positive_int(who, "input_size", input_size)
    if isinstance(channels, (str, bytes)) or not hasattr(channels, "__iter__"):
        raise ValueError(f"{who}: channels must be a list of positive integers, got {channels!r}")
    channels = [positive_int(who, "channels[i]", c) for c in channels]
    if not channels:
        raise ValueError(f"{who}: channels must list at least one block, got []")
    side = input_size
    for _ in channels:
        side //= 2
    if side < 1:
        raise ValueError(f"{who}: input_size {input_size} is too small for {len(channels)} "
                         f"pooling blocks (each halves it)")
    dt = dtype_name(who, dtype)
    seed = check_seed(who, seed)
    layers, c_in, k = [], in_channels, 0
    for c in channels:
        layers += [Conv2D(c_in, c, 3, padding=1, dtype=dt, seed=sub_seed(seed, k)), ReLU(),
                   Conv2D(c, c, 3, padding=1, dtype=dt, seed=sub_seed(seed, k + 1)), ReLU(),
                   MaxPool2D(2)]
        c_in, k = c, k + 2
    layers += [Flatten(), Linear(c_in * side * side, hidden, dtype=dt, seed=sub_seed(seed, k)),
               ReLU(), Linear(hidden, num_classes, dtype=dt, seed=sub_seed(seed, k + 1))]
    net = ImageClassifier(*layers)
    net.needs_input_grad = False            # the first Conv2D's: ∂L/∂x of the data is not needed
    net.builder_name = "vgg_small"
    net._record(num_classes=num_classes, in_channels=in_channels, channels=channels,
                hidden=hidden, input_size=input_size, dtype=dt, seed=seed)
    return net
