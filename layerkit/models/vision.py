"""Image classifiers, images to logits: LeNet-5, a small VGG (conv3-conv3-pool blocks), and the
lectures' large ones: VGG-16, AlexNet, ResNet-20 (CIFAR) and DenseNet-BC."""

from __future__ import annotations

import numpy as np

from ..grad_mode import no_grad
from ..layers.activations import ReLU
from ..layers.containers import Concat, Identity, Residual, Sequential
from ..layers.conv import Conv2D
from ..layers.linear import Flatten, Linear
from ..layers.normalization import BatchNorm2D
from ..layers.pooling import AvgPool2D, GlobalAvgPool, MaxPool2D
from ..layers.regularization import Dropout
from ..layers.response_norm import LocalResponseNorm
from ..layers.shortcut import ZeroPadShortcut
from ..layers.softmax import softmax
from ..validation import flag, number_in, one_of, positive_int
from .base import HasSpec, check_seed, dtype_name, sub_seed


class ImageClassifier(HasSpec, Sequential):
    """A :class:`Sequential` that maps images (N, C, H, W) to class logits (N, K), with a spec.

    ``forward`` returns logits; train them with ``CrossEntropy`` (softmax + negative
    log-likelihood in one stable step). ``predict_proba(x)`` is the softmax of the logits,
    ``predict(x)`` the arg max.
    """

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities softmax(forward(x)), shape (N, K), rows summing to 1; computed
        under :func:`layerkit.no_grad` (no cache kept, a pending backward raises)."""
        with no_grad():
            return softmax(self.forward(x), axis=-1)

    def predict(self, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Predicted class ids (N,), int64, computed ``batch_size`` images at a time under
        :func:`layerkit.no_grad`."""
        batch_size = positive_int("predict", "batch_size", batch_size)
        with no_grad():
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


# -- the lectures' large image classifiers ------------------------------------------------------

def _classifier(who: str, builder: str, layers: list, **kwargs) -> ImageClassifier:
    """An ImageClassifier of ``layers`` with its spec; the first layer skips ∂L/∂x of the data."""
    net = ImageClassifier(*layers)
    net.needs_input_grad = False
    net.builder_name = builder
    net._record(**kwargs)
    return net


def _common(who: str, num_classes, in_channels, dtype, seed) -> tuple:
    return (positive_int(who, "num_classes", num_classes),
            positive_int(who, "in_channels", in_channels), dtype_name(who, dtype),
            check_seed(who, seed))


def _dropout_p(who: str, dropout) -> float:
    return number_in(who, "dropout", dropout, 0.0, 1.0, high_open=True)


VGG16_CHANNELS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                  512, 512, 512, "M")


def vgg16(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5,
          dtype=np.float32, seed=0):
    """VGG-16 (Simonyan & Zisserman 2015, configuration D) for 224×224 images, torchvision's
    layer shapes.

    13 × [Conv2D(·, c, 3, padding=1) - ReLU] with c = 64, 64 | 128, 128 | 256 × 3 | 512 × 3 |
    512 × 3 and a MaxPool2D(2) after each group (224 → 7), then Flatten - Linear(512·7·7, 4096) -
    ReLU - Dropout - Linear(4096, 4096) - ReLU - Dropout - Linear(4096, K).

    Shape
    -----
    x : (N, C, 224, 224) -> logits (N, K). 138,357,544 parameters for C = 3, K = 1000, as
    torchvision's ``vgg16()``. torchvision's adaptive average pooling to 7 × 7 is the identity
    at 224 × 224 and is left out, so other input sizes raise at the first Linear.

    Parameters are named by position in one flat Sequential (``"0.weight"`` … ``"38.weight"``);
    torchvision's ``features.i`` is ``"i"`` here and its ``classifier.j`` is ``"32 + j"``.
    """
    who = "vgg16"
    num_classes, in_channels, dt, seed = _common(who, num_classes, in_channels, dtype, seed)
    p = _dropout_p(who, dropout)
    layers, c_in, k = [], in_channels, 0
    for c in VGG16_CHANNELS:
        if c == "M":
            layers.append(MaxPool2D(2))
            continue
        layers += [Conv2D(c_in, c, 3, padding=1, dtype=dt, seed=sub_seed(seed, k)), ReLU()]
        c_in, k = c, k + 1
    layers += [Flatten(),
               Linear(512 * 7 * 7, 4096, dtype=dt, seed=sub_seed(seed, k)), ReLU(),
               Dropout(p, seed=sub_seed(seed, k + 1)),
               Linear(4096, 4096, dtype=dt, seed=sub_seed(seed, k + 2)), ReLU(),
               Dropout(p, seed=sub_seed(seed, k + 3)),
               Linear(4096, num_classes, dtype=dt, seed=sub_seed(seed, k + 4))]
    return _classifier(who, "vgg16", layers, num_classes=num_classes, in_channels=in_channels,
                       dropout=p, dtype=dt, seed=seed)


def alexnet(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5,
            lrn: bool = False, groups: int = 1, dtype=np.float32, seed=0):
    """AlexNet (Krizhevsky et al. 2012) for 224×224 images, torchvision's one-tower layer shapes.

    Conv2D(C, 64, 11, stride=4, padding=2) - ReLU - MaxPool2D(3, stride=2) -
    Conv2D(64, 192, 5, padding=2) - ReLU - MaxPool2D(3, stride=2) -
    Conv2D(192, 384, 3, padding=1) - ReLU - Conv2D(384, 256, 3, padding=1) - ReLU -
    Conv2D(256, 256, 3, padding=1) - ReLU - MaxPool2D(3, stride=2) (224 → 55 → 27 → 13 → 6),
    Flatten - Dropout - Linear(256·6·6, 4096) - ReLU - Dropout - Linear(4096, 4096) - ReLU -
    Linear(4096, K).

    Parameters
    ----------
    lrn : bool, default False
        True adds the paper's ``LocalResponseNorm(5, alpha=5 · 1e-4, beta=0.75, k=2)`` after the
        first two ReLUs (no parameters; torchvision leaves it out).
    groups : 1 (default) or 2
        2 is the paper's two towers: the second, fourth and fifth convolutions (those that did
        not cross between its two GPUs) become ``groups=2``, each half of the output channels
        seeing only its half of the input channels. That halves their weights: 60,209,960
        parameters for C = 3, K = 1000.

    Shape
    -----
    x : (N, C, 224, 224) -> logits (N, K). 61,100,840 parameters for C = 3, K = 1000, as
    torchvision's ``alexnet()`` (its adaptive pooling to 6 × 6 is the identity at 224 and is
    left out) when ``groups`` = 1.
    """
    who = "alexnet"
    num_classes, in_channels, dt, seed = _common(who, num_classes, in_channels, dtype, seed)
    p = _dropout_p(who, dropout)
    lrn = flag(who, "lrn", lrn)
    if groups not in (1, 2) or isinstance(groups, bool):
        raise ValueError(f"alexnet: groups must be 1 or 2, got {groups!r}")
    g = groups
    norm = (lambda: [LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)]) if lrn else list
    s = lambda i: sub_seed(seed, i)
    layers = [Conv2D(in_channels, 64, 11, stride=4, padding=2, dtype=dt, seed=s(0)), ReLU(),
              *norm(), MaxPool2D(3, stride=2),
              Conv2D(64, 192, 5, padding=2, groups=g, dtype=dt, seed=s(1)), ReLU(), *norm(),
              MaxPool2D(3, stride=2),
              Conv2D(192, 384, 3, padding=1, dtype=dt, seed=s(2)), ReLU(),
              Conv2D(384, 256, 3, padding=1, groups=g, dtype=dt, seed=s(3)), ReLU(),
              Conv2D(256, 256, 3, padding=1, groups=g, dtype=dt, seed=s(4)), ReLU(),
              MaxPool2D(3, stride=2),
              Flatten(), Dropout(p, seed=s(5)),
              Linear(256 * 6 * 6, 4096, dtype=dt, seed=s(6)), ReLU(), Dropout(p, seed=s(7)),
              Linear(4096, 4096, dtype=dt, seed=s(8)), ReLU(),
              Linear(4096, num_classes, dtype=dt, seed=s(9))]
    return _classifier(who, "alexnet", layers, num_classes=num_classes, in_channels=in_channels,
                       dropout=p, lrn=lrn, groups=g, dtype=dt, seed=seed)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int, dt: str, seed) -> list:
    """Conv2D (no bias: the batch norm's shift replaces it, 'same' padding) - BatchNorm2D."""
    return [Conv2D(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False,
                   dtype=dt, seed=seed), BatchNorm2D(c_out, dtype=dt)]


def _basic_block(c_in: int, c_out: int, stride: int, shortcut: str, dt: str, seed) -> list:
    """He et al.'s basic block: ReLU(BN(conv3(ReLU(BN(conv3(x))))) + shortcut(x)); the shortcut
    is x itself when the shape is kept, else option A (subsample + zero channels) or B (a 1×1
    convolution with stride and a batch norm)."""
    block = Sequential(*_conv_bn(c_in, c_out, 3, stride, dt, sub_seed(seed, 0)), ReLU(),
                       *_conv_bn(c_out, c_out, 3, 1, dt, sub_seed(seed, 1)))
    if stride == 1 and c_in == c_out:
        short = None
    elif shortcut == "A":
        short = ZeroPadShortcut(c_in, c_out, stride=stride)
    else:
        short = Sequential(*_conv_bn(c_in, c_out, 1, stride, dt, sub_seed(seed, 2)))
    return [Residual(block, short), ReLU()]


def resnet20(*, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A",
             dtype=np.float32, seed=0):
    """ResNet-20 for 32×32 images (He et al. 2016, section 4.2, n = 3).

    Conv2D(C, 16, 3, padding=1) - BN - ReLU, then three stages of n = 3 basic blocks with
    16, 32, 64 channels on 32×32, 16×16, 8×8 maps (the first block of stages 2 and 3 has
    stride 2), GlobalAvgPool - Linear(64, K): 6n + 2 = 20 weighted layers. Convolutions have
    no bias (each is followed by a batch norm).

    Parameters
    ----------
    shortcut : {'A', 'B'}, default 'A'
        Where a block halves the map and doubles the channels: 'A' (the paper's choice for
        CIFAR): keep every second position and pad the new channels with zeros
        (:class:`~layerkit.layers.ZeroPadShortcut`, no parameters); 'B': a 1×1 convolution
        with stride 2 and a batch norm.

    Shape
    -----
    x : (N, C, 32, 32) -> logits (N, K) (any H, W: the pooling is global).

    Notes
    -----
    Parameters for C = 3, K = 10, counted by hand: the first conv 3·16·9 = 432 and its BN 32;
    stage 1: 6 convs of 16·16·9 = 2,304 and 6 BNs of 32: 14,016; stage 2: 16·32·9 = 4,608 +
    5 · 32·32·9 = 46,080 and 6 BNs of 64: 51,072; stage 3: 32·64·9 = 18,432 + 5 · 64·64·9 =
    184,320 and 6 BNs of 128: 203,520; Linear 64·10 + 10 = 650. Option A: 269,722 ("0.27 M",
    the paper's Table 6). Option B adds 16·32 + 64 and 32·64 + 128: 272,474.
    """
    who = "resnet20"
    num_classes, in_channels, dt, seed = _common(who, num_classes, in_channels, dtype, seed)
    shortcut = one_of(who, "shortcut", shortcut, ("A", "B"))
    layers, c_in, k = [*_conv_bn(in_channels, 16, 3, 1, dt, sub_seed(seed, 0)), ReLU()], 16, 1
    for stage, c in enumerate((16, 32, 64)):
        for i in range(3):
            stride = 2 if stage > 0 and i == 0 else 1
            layers += _basic_block(c_in, c, stride, shortcut, dt, sub_seed(seed, 10 * k))
            c_in, k = c, k + 1
    layers += [GlobalAvgPool(), Linear(64, num_classes, dtype=dt, seed=sub_seed(seed, 10 * k))]
    return _classifier(who, "resnet20", layers, num_classes=num_classes,
                       in_channels=in_channels, shortcut=shortcut, dtype=dt, seed=seed)


def _dense_layer(c_in: int, growth: int, dt: str, seed) -> Concat:
    """DenseNet-BC's layer: x joined (channels) with BN-ReLU-Conv1×1(4k)-BN-ReLU-Conv3×3(k)(x)."""
    branch = Sequential(BatchNorm2D(c_in, dtype=dt), ReLU(),
                        Conv2D(c_in, 4 * growth, 1, bias=False, dtype=dt, seed=sub_seed(seed, 0)),
                        BatchNorm2D(4 * growth, dtype=dt), ReLU(),
                        Conv2D(4 * growth, growth, 3, padding=1, bias=False, dtype=dt,
                               seed=sub_seed(seed, 1)))
    return Concat(Identity(), branch, axis=1)


def densenet_bc(*, num_classes: int = 10, in_channels: int = 3, growth_rate: int = 12,
                block_layers=(6, 6, 6), compression: float = 0.5, dtype=np.float32, seed=0):
    """DenseNet-BC (Huang et al. 2017) for small images; default: DenseNet-BC-40 with k = 12.

    Conv2D(C, 2k, 3, padding=1), then dense blocks of ``block_layers[b]`` bottleneck layers
    (each adds k channels: x ↦ [x, H(x)] with H = BN-ReLU-Conv1×1(4k)-BN-ReLU-Conv3×3(k)),
    between blocks a transition BN-ReLU-Conv1×1(⌊θ·c⌋)-AvgPool2D(2), and at the end
    BN-ReLU-GlobalAvgPool-Linear(c, K). Convolutions have no bias.

    Parameters
    ----------
    growth_rate : int
        k, the channels each layer adds.
    block_layers : sequence of positive ints
        The number of layers per dense block ((L − 4) / 6 each for the paper's depth L).
    compression : float in (0, 1]
        θ, the fraction of channels a transition keeps.

    Shape
    -----
    x : (N, C, H, W) -> logits (N, K); H and W are halved by each transition.
    """
    who = "densenet_bc"
    num_classes, in_channels, dt, seed = _common(who, num_classes, in_channels, dtype, seed)
    growth = positive_int(who, "growth_rate", growth_rate)
    if isinstance(block_layers, (str, bytes)) or not hasattr(block_layers, "__iter__"):
        raise ValueError(f"{who}: block_layers must be a list of positive integers, got "
                         f"{block_layers!r}")
    block_layers = [positive_int(who, "block_layers[i]", n) for n in block_layers]
    if not block_layers:
        raise ValueError(f"{who}: block_layers must list at least one block, got []")
    theta = number_in(who, "compression", compression, 0.0, 1.0, low_open=True)
    c = 2 * growth
    layers, k = [Conv2D(in_channels, c, 3, padding=1, bias=False, dtype=dt, seed=seed)], 1
    for b, n in enumerate(block_layers):
        for _ in range(n):
            layers.append(_dense_layer(c, growth, dt, sub_seed(seed, 10 * k)))
            c, k = c + growth, k + 1
        if b < len(block_layers) - 1:
            c_out = max(1, int(theta * c))
            layers += [BatchNorm2D(c, dtype=dt), ReLU(),
                       Conv2D(c, c_out, 1, bias=False, dtype=dt, seed=sub_seed(seed, 10 * k)),
                       AvgPool2D(2)]
            c, k = c_out, k + 1
    layers += [BatchNorm2D(c, dtype=dt), ReLU(), GlobalAvgPool(),
               Linear(c, num_classes, dtype=dt, seed=sub_seed(seed, 10 * k))]
    return _classifier(who, "densenet_bc", layers, num_classes=num_classes,
                       in_channels=in_channels, growth_rate=growth, block_layers=block_layers,
                       compression=theta, dtype=dt, seed=seed)
