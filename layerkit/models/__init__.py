"""Model builders: ready-made networks assembled from layerkit layers.

Every neural model here follows the Layer contract — ``params`` / ``grads`` under dotted names
(``"0.weight"``, ``"lstm.0.weight_ih"``), ``forward``, ``backward``, ``zero_grad``,
``train`` / ``eval``, ``astype`` — so the optimizers, gradient clipping and
:func:`layerkit.gradcheck` work on a whole model as on one layer. Each one also carries

    model.spec = {"builder": name, "kwargs": {...}}      # JSON-serialisable

and ``build(model.spec)`` rebuilds the same architecture (same parameter names, shapes and
dtypes; the same initial weights when ``seed`` is an int). A checkpoint is therefore the spec
plus the parameter arrays by name.

==========================  =================================================================
builder (``BUILDERS`` key)  model
==========================  =================================================================
``lenet5``                  LeNet-5 for (N, 1, 28, 28) images -> class logits (N, K)
``vgg_small``               conv3-conv3-pool blocks + a linear head, (N, C, 28, 28) -> (N, K)
``char_lstm``               :class:`CharLSTM`: Embedding -> LSTM -> Linear, ids (N, T) ->
                            logits (N, T, V); stateful for truncated BPTT; ``sample``
``ngram``                   :class:`NGram`: add-k smoothed counts (not a Layer: no gradients)
``seq2seq``                 :class:`Seq2Seq`: LSTM encoder -> LSTM decoder, teacher forcing,
                            ``greedy_decode``
``sequence_classifier``     :class:`SequenceClassifier`: Embedding -> RNN/LSTM/GRU -> Linear
                            on the last state, ids (N, T) -> logits (N, K)
``vgg16``                   VGG-16, (N, 3, 224, 224) -> (N, 1000), torchvision's shapes
``alexnet``                 AlexNet, (N, 3, 224, 224) -> (N, 1000), torchvision's shapes
``resnet20``                He et al.'s CIFAR ResNet-20, (N, 3, 32, 32) -> (N, 10)
``densenet_bc``             DenseNet-BC (default BC-40, k = 12), (N, 3, H, W) -> (N, 10)
``caption_net``             :class:`CaptionNet`: CNN encoder -> LSTM decoder, images and
                            tokens (N, T) -> logits (N, T, V); greedy and beam decoding
``segnet``                  :class:`SegNet`: Conv-BN-ReLU encoder with pooling indices ->
                            unpooling (or transposed-conv) decoder, (N, C, H, W) -> logits
                            (N, K, H, W)
``dcgan``                   :class:`DCGAN`: generator z (N, Z) -> (N, 1, 28, 28) and
                            discriminator (N, 1, 28, 28) -> logits (N, 1)
==========================  =================================================================

The classifiers return *logits*. "A softmax output layer trained with cross-entropy" is
``CrossEntropy`` applied to the logits (it applies the softmax itself, in a numerically stable
way); the probabilities are ``model.predict_proba(x)``.

The training recipes behind ``layerkit train`` (:mod:`layerkit.train.recipes`) state what each
model reaches and in how long.

Modules: :mod:`~layerkit.models.vision` (image classifiers), :mod:`~layerkit.models.language`
(language models), :mod:`~layerkit.models.sequence` (encoder-decoder, sequence classifier),
:mod:`~layerkit.models.captioning` (CNN + LSTM captioner), :mod:`~layerkit.models.decoding`
(beam search), :mod:`~layerkit.models.segmentation` (SegNet),
(language models), :mod:`~layerkit.models.gan` (DCGAN), :mod:`~layerkit.models.sequence` (encoder-decoder, sequence classifier),
:mod:`~layerkit.models.registry` (``BUILDERS``, ``build``), :mod:`~layerkit.models.base` (the
spec and the model base class).
"""

from ..layers.softmax import softmax
from .base import HasSpec, Model
from .captioning import CaptionNet
from .decoding import beam_search
from .gan import DCGAN
from .language import CharLSTM, NGram, char_lstm
from .registry import BUILDERS, build
from .segmentation import SegNet
from .sequence import Seq2Seq, SequenceClassifier
from .vision import ImageClassifier, alexnet, densenet_bc, lenet5, resnet20, vgg16, vgg_small

__all__ = ["lenet5", "vgg_small", "char_lstm", "CharLSTM", "NGram", "Seq2Seq",
           "SequenceClassifier", "ImageClassifier", "build", "BUILDERS", "softmax", "Model",
           "HasSpec"]
__all__ += ["vgg16", "alexnet", "resnet20", "densenet_bc"]
__all__ += ["CaptionNet", "beam_search", "SegNet"]
__all__ += ["DCGAN"]
