"""The package's shape: every documented public name imports from where the README says, and
imports flow one way (cli -> train/check -> models -> layers -> kernels)."""

import ast
import importlib
from pathlib import Path

import pytest

import layerkit

LAYERS = ["Linear", "Flatten", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
          "softmax_jacobian", "Dropout", "Sequential", "Conv1D", "Conv2D", "Conv3D",
          "ConvTranspose2D", "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D",
          "AvgPool3D", "GlobalAvgPool", "MaxUnpool2D", "ChannelMaxPool", "BatchNorm1D",
          "BatchNorm2D", "Residual", "Concat", "Identity", "Embedding", "RNN", "LSTM", "GRU",
          "Bidirectional", "Container", "LPPool1D", "LPPool2D", "LocalResponseNorm",
          "ZeroPadShortcut", "Reshape", "Permute", "RecurrentCell", "MinibatchStd"]
CHECKPOINTS = ["save", "load", "save_params", "load_params", "FORMAT", "FORMAT_VERSION"]

# Written out by hand, not read from __all__: a move that drops a name must fail here.
PUBLIC = {
    "layerkit": LAYERS + ["Layer", "CrossEntropy", "MSE", "BCEWithLogits", "SGD", "Adam",
                          "WeightAverage", "clip_grad_norm", "clip_grad_value", "gradcheck", "GradcheckReport",
                          "no_grad", "enable_grad", "grad_enabled", "init", "check", "checkpoint", "data", "models", "testing", "train"],
    "layerkit.layers": LAYERS,
    "layerkit.losses": ["CrossEntropy", "MSE", "BCEWithLogits"],
    "layerkit.optim": ["Optimizer", "SGD", "Adam", "WeightAverage", "clip_grad_norm",
                       "clip_grad_value"],
    "layerkit.init": ["zeros", "ones", "glorot_uniform", "glorot_normal", "kaiming_uniform",
                      "kaiming_normal", "orthogonal", "fans"],
    "layerkit.check": ["gradcheck", "GradcheckReport", "TensorCheck", "ContractError",
                       "check_contract", "explain", "format_table", "LossAsLayer", "Problem",
                       "as_layer", "FunctionPair", "LossFunction", "AttributeLayer"],
    "layerkit.testing": ["assert_gradients_match"],
    "layerkit.grad_mode": ["no_grad", "enable_grad", "grad_enabled"],
    "layerkit.checkpoint": CHECKPOINTS,
    "layerkit.train": ["fit", "evaluate", "History", "METRICS"] + CHECKPOINTS,
    "layerkit.models": ["lenet5", "vgg_small", "char_lstm", "CharLSTM", "NGram", "Seq2Seq",
                        "SequenceClassifier", "ImageClassifier", "build", "BUILDERS", "softmax",
                        "Model", "HasSpec", "vgg16", "alexnet", "resnet20", "densenet_bc",
                        "CaptionNet", "beam_search", "SegNet", "DCGAN"],
    "layerkit.data": ["MissingExtraError", "Split", "TextSplit", "load_mnist5k", "load_digits",
                      "load_shakespeare", "shakespeare_plays", "SHAKESPEARE_VALID_PLAYS",
                      "SHAKESPEARE_TEST_PLAYS", "batches", "Batches", "one_hot", "CharVocab",
                      "WordVocab", "sequence_batches", "SequenceBatches", "seq2seq_digits",
                       "DigitTask", "digit_canvases", "DigitCanvases", "load_mnist",
                      "load_fashion_mnist", "load_cifar10", "read_idx", "read_cifar_batch",
                      "cache_dir", "NotCachedError", "ChecksumError", "sentiment_sequences",
                      "SentimentTask", "polarity_score", "load_imdb_reviews", "Reviews",
                      "POSITIVE_WORDS", "NEGATIVE_WORDS", "NEUTRAL_WORDS", "NEGATIONS"],
    "layerkit.data.sentiment": ["sentiment_sequences", "SentimentTask", "polarity_score",
                                "load_imdb_reviews", "Reviews", "POSITIVE_WORDS",
                                "NEGATIVE_WORDS", "NEUTRAL_WORDS", "NEGATIONS"],
    "layerkit.models.gan": ["DCGAN", "dcgan_normal"],
    "layerkit.train.recipe_dcgan": ["dcgan", "judge_digits"],
    "layerkit.train.recipe_word_lstm": ["word_lstm", "shakespeare_words", "WORD_NGRAM",
                                        "VOCAB_SIZE"],
    "layerkit.train.recipe_sentiment": ["sentiment", "naive_bayes_accuracy",
                                        "sentiment_accuracy"],
    "layerkit.data.downloads": ["Remote", "NotCachedError", "ChecksumError", "cache_dir", "fetch",
                                "md5_of", "read_idx", "read_cifar_batch", "load_mnist",
                                "load_fashion_mnist", "load_cifar10", "MNIST_FILES",
                                "FASHION_MNIST_FILES", "CIFAR10_ARCHIVE", "CIFAR10_BATCHES",
                                "CACHE_ENV", "DEBIAN_FASHION_MNIST"],
    "layerkit.train.recipes": ["RECIPES", "Result", "sample", "check_options"],
    "layerkit.train.recipe_caption": ["caption", "caption_scores"],
    "layerkit.train.recipe_segnet": ["segnet", "segmentation_scores"],
    "layerkit.train.scores": ["bleu", "confusion_matrix", "iou_per_class", "mean_iou"],
    "layerkit.train.steps": ["train_steps"],
    "layerkit.cli": ["main", "build_parser", "progress_line", "warm_builtin"],
    "layerkit.interop": ["to_torch", "from_torch", "state_dict", "load_state_dict",
                         "torch_names"],
    "layerkit.jit_notice": ["install", "on_first_compile", "cold_modules", "estimate_s",
                            "message", "announced", "COMPILE_S", "THRESHOLD_S"],
    "layerkit.check.precompile": ["kernel_cache_dir", "cold_kernel_modules", "cores",
                                  "idle_cores", "Background"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_every_documented_public_name_imports(module):
    mod = importlib.import_module(module)
    missing = [name for name in PUBLIC[module] if not hasattr(mod, name)]
    assert not missing, f"{module} lost {missing}"


@pytest.mark.parametrize("module", sorted(m for m in PUBLIC if m != "layerkit.cli"))
def test_all_lists_exactly_what_exists(module):
    """__all__ (what `import *` gives) names only things that exist, and every documented
    name that is not a submodule is in it."""
    mod = importlib.import_module(module)
    exported = getattr(mod, "__all__", None)
    assert exported is not None, f"{module} has no __all__"
    assert [n for n in exported if not hasattr(mod, n)] == []
    documented = {n for n in PUBLIC[module]
                  if not isinstance(getattr(mod, n), type(layerkit))}
    assert documented <= set(exported), sorted(documented - set(exported))


def test_every_layer_is_reachable_from_the_top_level():
    for name in layerkit.layers.__all__:
        assert getattr(layerkit, name) is getattr(layerkit.layers, name)


# -- import direction ----------------------------------------------------------------------------

PACKAGE = Path(layerkit.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set:
    """Every layerkit module a file imports, at the top or inside a function (lazy imports
    count: they run too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "layerkit"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "layerkit":
                found.add(target)
                found |= {f"{target}.{a.name}" for a in node.names
                          if (PACKAGE.parent / f"{target}.{a.name}".replace(".", "/")).is_dir()
                          or (PACKAGE.parent / (f"{target}.{a.name}".replace(".", "/") + ".py"))
                          .is_file()}
    return found


def _group(module: str) -> str:
    """layerkit.layers.conv -> 'layers'; layerkit.losses -> 'losses'; layerkit -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# group -> groups it must never import (re-export modules checkpoint/testing count as train/check)
FORBIDDEN = {
    "kernels": None,      # nothing of layerkit outside kernels/ (config and sibling kernels)
    "layers": {"models", "data", "train", "check", "cli", "checkpoint", "testing", "losses",
               "optim"},
    "check": {"models", "data", "train", "cli", "checkpoint"},
    "models": {"data", "train", "check", "cli", "checkpoint", "testing"},
    "data": {"layers", "models", "train", "check", "cli", "checkpoint", "testing", "kernels"},
    "train": {"check", "cli", "testing"},
    "layer": {"layers", "models", "data", "train", "check", "cli", "kernels"},
    "validation": {"layers", "models", "data", "train", "check", "cli", "kernels"},
    "grad_mode": {"layer", "layers", "models", "data", "train", "check", "cli", "kernels",
                  "validation"},
}


def _files():
    return sorted(p for p in PACKAGE.rglob("*.py") if "templates" not in p.parts)


def test_the_package_has_the_modules_this_test_reads():
    groups = {_group(_module_name(p)) for p in _files()}
    assert {"kernels", "layers", "check", "models", "data", "train", "cli"} <= groups


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path):
    group = _group(_module_name(path))
    imported = _imports(path)
    if group == "kernels":
        bad = sorted(m for m in imported if _group(m) != "kernels")
    else:
        bad = sorted(m for m in imported if _group(m) in FORBIDDEN.get(group, ()))
    assert not bad, f"{_module_name(path)} ({group}) must not import {bad}"


def test_the_direction_test_catches_a_wrong_import(tmp_path, monkeypatch):
    """The AST reader sees relative, absolute and lazy imports (so the test above can fail)."""
    fake = PACKAGE / "layers" / "conv.py"
    source = ("from ..train import fit\nimport layerkit.models\n"
              "def f():\n    from ..check.report import explain\n")
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source)
    found = _imports(fake)
    assert {"layerkit.train", "layerkit.models", "layerkit.check.report"} <= found


def test_private_names_do_not_cross_modules():
    """`from x import _name` only within one module's own tests, never inside the package."""
    crossing = []
    for path in _files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                crossing += [f"{_module_name(path)}: {a.name} from {node.module}"
                             for a in node.names if a.name.startswith("_")
                             and not a.name.startswith("__")]
    assert crossing == []


def test_recipes_and_loaders_load_on_first_use_only():
    """`import layerkit` and `layerkit gradcheck` leave train, data and models unimported (they
    cost a tenth of a second); attribute access and `from layerkit import ...` still reach them."""
    import subprocess
    import sys
    code = (
        "import sys, io, contextlib\n"
        "import layerkit\n"
        "heavy = ('layerkit.train', 'layerkit.data', 'layerkit.models', 'layerkit.checkpoint')\n"
        "assert not [m for m in heavy if m in sys.modules], sorted(sys.modules)\n"
        "from layerkit import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['gradcheck', '--list'])\n"
        "assert not [m for m in heavy if m in sys.modules]\n"
        "assert layerkit.models.lenet5 and 'layerkit.models' in sys.modules\n"
        "from layerkit import train\n"
        "assert train.fit is layerkit.train.fit and 'checkpoint' in dir(layerkit)\n"
        "assert layerkit.interop.to_torch\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    with pytest.raises(AttributeError, match="no attribute 'no_such_module'"):
        layerkit.no_such_module
