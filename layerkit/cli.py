"""The ``layerkit`` command line (``layerkit ...`` or ``python -m layerkit ...``).

Exit status of ``layerkit gradcheck``: 0 when every check passes, 1 when a check fails, 2 for a
usage error (bad path, unknown class, bad JSON, a layer that raises) — told in one paragraph,
with the traceback only under ``--traceback``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

import numpy as np

JSON_SCHEMA = "layerkit.gradcheck/2"


def _colour(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


class _Target:
    """One thing to check: its name, configuration text, format ("built-in", "layer contract",
    "function pair", "loss function", "attribute layer"), whether a second draw near 0 differs
    from the first, and ``build(rng, near_zero) -> (layer, inputs, forward_kwargs, names)``."""

    def __init__(self, name, config, fmt, build, two_draws):
        self.name, self.config, self.format = name, config, fmt
        self.build, self.two_draws = build, two_draws
        self.case = None             # the builtin.Case of `layerkit gradcheck [NAME]`


def _targets(args) -> list:
    from .check import builtin as builtin_checks
    from .check.inputs import Feed
    from .check.user_files import UsageError, load_object, parse_init

    known = builtin_checks.names()
    feed = Feed.from_args(args)
    custom = args.init is not None or args.input_shape or feed.names()
    if not args.layers:
        if custom:
            raise UsageError("--init, --input-shape and --shape need a layer to build: name "
                             "it, e.g. layerkit gradcheck Conv2D --init '{...}' --input-shape "
                             "1,2,7,7")
        return [_builtin_target(c) for c in builtin_checks.CASES]
    init = parse_init(args.init)
    targets = []
    for ref in args.layers:
        if ":" not in ref and not custom and not ref.endswith(".py"):
            if ref not in known:
                raise UsageError(f"no built-in layer named {ref}; choose from {', '.join(known)}, "
                                 "or name a class of your own as my_layers.py:MyLayer")
            targets += [_builtin_target(c) for c in builtin_checks.CASES if c.name == ref]
            continue
        obj, namespace = load_object(ref, import_timeout=args.import_timeout)
        name = ref if ":" in ref else obj.__name__
        if isinstance(obj, type):
            targets.append(_class_target(name, obj, init, feed, args))
        else:
            targets.append(_function_target(name, obj, namespace, feed, args))
    return targets


def _builtin_target(case):
    def build(rng, near_zero, case=case):
        layer, inputs, *extra = case.build(rng)
        return layer, inputs, extra[0] if extra else None, None
    target = _Target(case.name, case.config, "built-in", build, False)
    target.case = case
    return target


def warm_builtin(indices: list, options: dict) -> None:
    """Check the built-in cases ``indices`` with ``options`` (the gradcheck options) and drop
    the results: run in a worker process, it leaves in numba's cache every kernel the checks
    compile, for the main process to load."""
    from . import jit_notice
    from .check import builtin as builtin_checks
    jit_notice.announced()                  # the main process told the user already
    args = argparse.Namespace(**options)
    for index in indices:
        try:
            _check_one(_builtin_target(builtin_checks.CASES[index]), False, args)
        except Exception:                   # the main process checks it again and reports
            pass


_WARM_OPTIONS = ("dtype", "eps", "tol", "seed", "max_coords")


class _Warming:
    """Worker processes warming numba's cache for the built-in ``targets``, one job per kernel
    family (cases sharing kernels compile them once), families in the order they first come."""

    def __init__(self, targets, args, processes):
        from .check import builtin as builtin_checks
        from .check import precompile
        families = {}                        # family -> case indices, in order of first case
        self.job_of = {}                     # target -> its family's job number
        for t in targets:
            fam = builtin_checks.kernel_family(t.case)
            self.job_of[t] = list(families).index(fam) if fam in families else len(families)
            families.setdefault(fam, []).append(builtin_checks.CASES.index(t.case))
        options = {k: getattr(args, k) for k in _WARM_OPTIONS}
        self.pool = precompile.Background(warm_builtin, [(ix, options) for ix in
                                                         families.values()], processes)

    def wait(self, target) -> None:
        if target in self.job_of:
            self.pool.wait(self.job_of[target])

    def close(self) -> None:
        self.pool.close()


def _background_compile(targets, args):
    """With a cold kernel cache and two idle cores or more: :class:`_Warming` for the built-in
    ``targets`` (announced on stderr), else None."""
    from . import jit_notice
    from .check import precompile

    cold, cores = precompile.cold_kernel_modules(), precompile.idle_cores()
    if not targets or cores < 2 or jit_notice.estimate_s(cold) <= jit_notice.THRESHOLD_S:
        return None                 # (on busy cores the workers made a first run slower)
    warming = _Warming(targets, args, cores)
    jit_notice.announced()
    _progress(jit_notice.message(jit_notice.estimate_s(cold) / cores, cores))
    return warming


def _describe(feed, args) -> str:
    """The configuration text: constructor arguments, then each named input."""
    from .check.user_files import parse_init
    parts = [f"{k}={v}" for k, v in parse_init(args.init).items()]
    parts += [f"{n}: " + "x".join(map(str, s)) for n, s in feed.shapes.items()]
    parts += [f"{n}: int " + "x".join(map(str, s)) for n, (s, _) in feed.ints.items()]
    parts += [f"{n}: {path}" for n, path in (t.split("=", 1) for t in args.input)]
    parts += [f"{n}={json.dumps(v)}" for n, v in feed.values.items()]
    return ", ".join(parts)


def _class_target(name, cls, init, feed, args):
    """A class: Layer contract as it is, otherwise attribute style (adapted)."""
    from .check.adapters import AttributeLayer, follows_contract
    from .check.inputs import bind, positional_names, signature_text
    from .check.user_files import UsageError, build_layer, raised_in_check, readable_name

    if args.no_grad:
        raise UsageError("--no-grad is for functions; a class's float inputs are all checked")
    dtype = np.dtype(args.dtype)
    feed = _with_input_shapes(feed, cls, args)
    display = f"{cls.__name__}.forward"

    def build(rng, near_zero):
        obj = build_layer(cls, init, dtype, args.seed)
        high = getattr(obj, "num_embeddings", None) or getattr(obj, "num_classes", None) or 10
        named = feed.draw(rng, dtype, near_zero=near_zero, default_high=int(high))
        if not named:
            raise UsageError(f"{cls.__name__}: say what to feed forward with --shape NAME=d1,d2 "
                             "(or --input-shape 2,3,8,8, repeated for several inputs); "
                             f"{signature_text(obj.forward, display)}")
        inputs, kwargs = bind(obj.forward, display, named)
        names = positional_names(obj.forward)
        contract = follows_contract(obj) or hasattr(obj, "params") or hasattr(obj, "grads") \
            or not callable(getattr(obj, "backward", None))
        if contract:
            if args.batch_mean:
                raise UsageError(f"--batch-mean is for attribute-style classes (weights as "
                                 f"attributes W with dLdW); {cls.__name__} has params and grads")
            return obj, tuple(inputs), kwargs or None, names
        layer = AttributeLayer(obj, batch_mean=args.batch_mean, dtype=dtype, seed=args.seed,
                               name=readable_name(obj))
        try:
            layer.discover(inputs, kwargs)
        except Exception as e:
            raise raised_in_check(e, layer) from e
        return layer, tuple(inputs), kwargs or None, names
    fmt = "built-in" if cls.__module__.startswith("layerkit.") else None
    return _Target(name, _describe(feed, args), fmt, build, feed.draws_differ)


def _with_input_shapes(feed, cls, args):
    """--input-shape/--input-dtype (by position) turned into named inputs of forward."""
    import dataclasses

    from .check.inputs import parse_shape, positional_names, signature_text
    from .check.user_files import UsageError

    if not args.input_shape:
        if args.input_dtype:
            raise UsageError("--input-dtype goes with --input-shape")
        return feed
    if len(args.input_dtype) > len(args.input_shape):
        raise UsageError(f"{len(args.input_dtype)} --input-dtype for {len(args.input_shape)} "
                         "--input-shape")
    names = positional_names(cls.forward)[1:] if hasattr(cls, "forward") else []
    if len(args.input_shape) > len(names):
        raise UsageError(f"{len(args.input_shape)} --input-shape for "
                         f"{signature_text(cls.forward, cls.__name__ + '.forward')}")
    shapes, ints = dict(feed.shapes), dict(feed.ints)
    kinds = list(args.input_dtype) + ["float"] * (len(args.input_shape) - len(args.input_dtype))
    for name, text, kind in zip(names, args.input_shape, kinds):
        shape = parse_shape(text)
        if kind in ("float", "float64", "float32"):
            shapes[name] = shape
        elif kind in ("int", "int64", "int32"):
            ints[name] = (shape, None)
        else:
            raise UsageError(f"--input-dtype must be float, float32, float64, int, int32 or "
                             f"int64, got {kind!r}")
    return dataclasses.replace(feed, shapes=shapes, ints=ints)


def _function_target(name, fn, namespace, feed, args):
    """A function: a forward with its backward partner, or a loss returning its gradients."""
    from .check.adapters import FunctionPair, LossFunction, backward_partner
    from .check.inputs import bind
    from .check.user_files import UsageError

    if args.init is not None:
        raise UsageError(f"{fn.__name__} is a function: --init is for classes; give its "
                         "arguments with --shape, --int, --input or --arg")
    if args.batch_mean:
        raise UsageError("--batch-mean is for attribute-style classes (weights as attributes "
                         "W with dLdW), not for functions")
    if args.backward:
        partner = namespace.get(args.backward)
        if not callable(partner):
            raise UsageError(f"--backward {args.backward}: no function of that name in the "
                             f"file of {fn.__name__}")
    else:
        partner = backward_partner(fn, namespace)
        if partner is None and "forward" in fn.__name__:
            raise UsageError(
                f"{fn.__name__} has no backward partner: no function "
                f"{fn.__name__.replace('forward', 'backward')} next to it; name it with "
                "--backward NAME")
    unknown = [n for n in args.no_grad if n not in feed.names()]
    if unknown:
        raise UsageError(f"--no-grad {', '.join(unknown)}: give the array with --shape, --int "
                         "or --input first")
    dtype = np.dtype(args.dtype)

    def build(rng, near_zero):
        named = feed.draw(rng, dtype, near_zero=near_zero)
        bind(fn, fn.__name__, named)                 # a usage error listing the signature
        arrays = {k: v for k, v in named.items()
                  if isinstance(v, np.ndarray) and k not in args.no_grad}
        fixed = {k: v for k, v in named.items() if k not in arrays}
        layer = (FunctionPair(fn, partner, arrays, fixed, seed=args.seed) if partner else
                 LossFunction(fn, arrays, fixed, seed=args.seed))
        return layer, layer.inputs, None, layer.input_names
    fmt = "function pair" if partner else "loss function"
    return _Target(name, _describe(feed, args), fmt, build, feed.draws_differ)


def _check_one(target, near_zero, args):
    """(report, layer, format) of one draw of a target."""
    from .check import ContractError, gradcheck
    from .check.adapters import name_report
    from .check.user_files import UsageError, raised_in_check, readable_name

    dtype = np.dtype(args.dtype)
    layer, inputs, kwargs, names = target.build(np.random.default_rng(args.seed), near_zero)
    if target.format == "built-in" and dtype != np.float64 and hasattr(layer, "astype"):
        layer.astype(dtype)          # built-in configurations are float64
    fmt = target.format or getattr(layer, "format", None) or "layer contract"
    try:
        report = gradcheck(layer, inputs, eps=args.eps, tol=args.tol, seed=args.seed,
                           max_coords=args.max_coords, dtype=dtype, forward_kwargs=kwargs)
    except ContractError as e:
        raise UsageError(str(e).replace(repr(layer), readable_name(layer))) from None
    except UsageError:
        raise
    except Exception as e:
        raise raised_in_check(e, layer) from e
    if fmt != "built-in":
        report.layer = readable_name(layer)
        name_report(report, layer, names)
    return report, layer, fmt


def _gradcheck(args) -> int:
    from .check import builtin as builtin_checks
    from .check import explain, format_table
    from .check.user_files import UsageError

    if args.list:
        for name in builtin_checks.names():
            configs = [c.config for c in builtin_checks.CASES if c.name == name]
            print(f"{name}: " + "; ".join(configs))
        return 0
    dtype = np.dtype(args.dtype)
    results, extra = [], []          # extra: (format, draw, names, notes) per result
    background = None                # worker processes compiling kernels ahead of the checks
    try:
        targets = _targets(args)
        built_in = [t for t in targets if t.case is not None]
        if built_in:
            _progress(f"layerkit gradcheck: checking {len(built_in)} built-in configuration(s) "
                      f"({dtype}) ...")
        background = _background_compile(built_in, args)
        for target in targets:
            if background is not None:
                background.wait(target)
            draws = (False, True) if target.two_draws and args.draws == 2 else (False,)
            for k, near_zero in enumerate(draws, 1):
                report, layer, fmt = _check_one(target, near_zero, args)
                config = target.config + ("; " if target.config else "") + \
                    ("draw 2 (near 0)" if near_zero else "draw 1") if len(draws) == 2 \
                    else target.config
                if target.case is not None:
                    _progress(progress_line(len(results) + 1, len(targets), target.name, config,
                                            report))
                results.append((target.name, config, report))
                names = [t.name for t in report.tensors]
                extra.append((fmt, k, names, list(getattr(layer, "notes", ()))))
    except UsageError as e:
        return _usage_error(args, e)
    finally:
        if background is not None:
            background.close()

    failed = [(n, c) for n, c, r in results if not r.passed]
    if args.json:
        print(json.dumps({
            "schema": JSON_SCHEMA, "passed": not failed, "dtype": str(dtype),
            "tol": results[0][2].tol, "eps": results[0][2].eps, "seed": args.seed, "error": None,
            "checks": [dict(name=n, config=c, format=fmt, draw=k, notes=notes,
                            **r.to_dict(elements=args.verbose))
                       for (n, c, r), (fmt, k, _, notes) in zip(results, extra)],
        }, indent=2))
        return 1 if failed else 0
    print(format_table(results, colour=_colour(sys.stdout)))
    worst = max((r.max_rel_error for _, _, r in results), default=float("nan"))
    print(f"\n{len(results)} configuration(s), {sum(len(r.tensors) for _, _, r in results)} "
          f"tensors; worst relative error {worst:.2e} (tolerance {results[0][2].tol:g}, {dtype})")
    notes = list(dict.fromkeys(f"note: {results[i][0]}: {note}"
                               for i, (_, _, _, ns) in enumerate(extra) for note in ns))
    if notes:
        print("\n" + "\n".join(notes))
    details = explain(results, verbose=args.verbose)
    if details:
        print("\n" + details)
    if failed:
        print("\nFAILED: " + ", ".join(f"{n} [{c}]" if c else n for n, c in failed))
    else:
        print("all passed")
    return 1 if failed else 0


def progress_line(k: int, n: int, name: str, config: str, report) -> str:
    """One checked built-in configuration, as printed on stderr while the run goes on:
    ``[ k/n] name [config]: pass|FAIL, worst relative error e``."""
    width = len(str(n))
    verdict = "pass" if report.passed else "FAIL"
    return (f"[{k:>{width}}/{n}] {name} [{config}]: {verdict}, worst relative error "
            f"{report.max_rel_error:.1e}")


def _progress(line: str) -> None:
    """A progress line on stderr, flushed at once (stdout keeps the table or the JSON)."""
    print(line, file=sys.stderr, flush=True)


def _usage_error(args, e) -> int:
    if args.traceback and e.__cause__ is not None:
        traceback.print_exception(e.__cause__)
    message = f"layerkit gradcheck: {e}"
    if not args.traceback and e.__cause__ is not None \
            and not isinstance(e.__cause__, NotImplementedError):
        message += " (run again with --traceback for the full traceback)"
    if args.json:
        print(json.dumps({"schema": JSON_SCHEMA, "passed": False, "checks": [],
                          "error": {"message": str(e)}}, indent=2))
    print(message, file=sys.stderr)
    return 2


def _template(args) -> int:
    from .check import templates

    if args.name is None or args.list:
        for name in templates.names(args.style):
            print(f"{name:10} {templates.summary(name, args.style)}")
        return 0
    try:
        text = templates.source(args.name, args.style)
    except ValueError as e:
        print(f"layerkit template: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def _on_off(text: str) -> bool:
    """A yes/no option's value: 1/0, true/false, yes/no, on/off (any case)."""
    value = {"1": True, "true": True, "yes": True, "on": True,
             "0": False, "false": False, "no": False, "off": False}.get(text.strip().lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected 1/0, true/false, yes/no or on/off, got "
                                         f"{text!r}")
    return value


_TRAIN_OPTIONS = {   # option -> (type, help); each recipe takes the ones its signature names
    "epochs": (int, "passes over the training data"),
    "steps": (int, "training steps (a fresh batch each step)"),
    "batch_size": (int, "examples (or text streams) per step"),
    "lr": (float, "Adam's learning rate"),
    "seed": (int, "seed of the initial weights and the batch order"),
    "out": (str, "checkpoint file to write"),
    "threads": (int, "numpy BLAS threads (needs threadpoolctl, in the train extra)"),
    "limit": (int, "train and test on the first LIMIT images only"),
    "max_chars": (int, "train and validate on the first MAX_CHARS characters only"),
    "seq_len": (int, "characters per BPTT window"),
    "hidden_size": (int, "recurrent hidden size"),
    "embedding_dim": (int, "embedding size"),
    "clip": (float, "gradient-norm clipping threshold"),
    "n": (int, "order (context of n-1 characters)"),
    "k": (float, "add-k smoothing"),
    "task": (str, "reverse, sort or copy"),
    "max_len": (int, "longest digit string"),
    "eval_every": (int, "steps per progress bar and held-out evaluation"),
    "beam_size": (int, "captions kept per step by beam search (1: greedy)"),
    "decoder": (str, "unpool (with the pooling indices) or transpose (learned upsampling)"),
    "data": (str, "image set: mnist5k or fashion-mnist"),
    "classifier": (str, "LeNet-5 checkpoint that judges the samples (all: train one first)"),
    "max_words": (int, "train and validate on the first MAX_WORDS words only"),
    "state_resets": (float, "probability that a window starts its stream from a zero state"),
    "features": (int, "channel width F of the generator and the discriminator"),
    "real_label": (float, "target of the real digits for D (< 1: one-sided label smoothing)"),
    "shift": (int, "D sees real and generated digits moved at random by up to SHIFT pixels"),
    "average": (float, "decay of an average of G's weights, judged and saved (0: none)"),
    "d_lr": (float, "the discriminator's learning rate (default: --lr; two timescales)"),
    "instance_noise": (float, "std of Gaussian noise added to D's inputs, falling linearly to 0"),
    "minibatch_std": (_on_off, "give D a minibatch-standard-deviation feature (1/0)"),
    "lr_decay": (float, "fraction of the steps at the end over which the learning rates fall "
                        "linearly to 0"),
}
_RECIPE_SUMMARIES = {
    "lenet": "LeNet-5 on MNIST-5k (test accuracy)",
    "char-lstm": "character LSTM on Shakespeare (validation perplexity vs a 5-gram)",
    "ngram": "character n-gram on Shakespeare (validation perplexity)",
    "seq2seq": "LSTM encoder-decoder reversing digit strings (exact-sequence accuracy)",
    "caption": "CNN + LSTM captions of multi-digit canvases (exact match, BLEU-4)",
    "segnet": "SegNet per-pixel digit classes on multi-digit canvases (mean IoU)",
    "dcgan": "DCGAN on MNIST-5k (generated digits judged by a LeNet-5)",
    "word-lstm": "word-level LSTM on Shakespeare (validation perplexity vs a word bigram)",
    "sentiment": "LSTM many-to-one on synthetic reviews with negation (accuracy vs bag of words)",
}


def _recipe_options(recipe) -> dict:
    """The ``_TRAIN_OPTIONS`` that ``recipe`` takes, with its defaults: name -> default."""
    import inspect

    return {name: p.default for name, p in inspect.signature(recipe).parameters.items()
            if name in _TRAIN_OPTIONS}


def _train(args) -> int:
    from .train import recipes
    from .data import MissingExtraError

    recipe = recipes.RECIPES[args.recipe]
    accepted = _recipe_options(recipe)
    kwargs = {}
    for name in _TRAIN_OPTIONS:
        value = getattr(args, name)
        if value is None:
            continue
        if name not in accepted:
            takes = ", ".join("--" + p.replace("_", "-") for p in accepted)
            print(f"layerkit train {args.recipe}: --{name.replace('_', '-')} does not apply "
                  f"here; it takes {takes} (layerkit train {args.recipe} --help)",
                  file=sys.stderr)
            return 2
        kwargs[name] = value
    try:
        recipes.check_options(args.recipe, kwargs)
        result = recipe(progress=not args.quiet, **kwargs)
    except MissingExtraError as e:
        print(f"layerkit train: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as e:
        text = str(e)
        prefix = "" if text.startswith(f"{args.recipe}: ") else f"{args.recipe}: "
        print(f"layerkit train {prefix}{text}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


def _sample(args) -> int:
    from .train import recipes
    from .train.checkpoints import load

    try:
        model = load(args.checkpoint)
        words = (getattr(model, "meta", None) or {}).get("words")
        sample = recipes.sample if words is None else _sample_words
        text = sample(model, prompt=args.prompt, length=args.length,
                      temperature=args.temperature, top_k=args.top_k, seed=args.seed)
    except (FileNotFoundError, ValueError, TypeError) as e:
        print(f"layerkit sample: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0


def _sample_words(model, *, prompt, length, temperature, top_k, seed) -> str:
    """Text from a word-level LM checkpoint (``meta["words"]``: its tokens in id order): the
    prompt, then ``length`` generated words, tokens joined by spaces. Prompt words outside the
    vocabulary read as ``<unk>``."""
    from .data import WordVocab

    vocab = WordVocab(model.meta["words"])
    if len(vocab) != model.vocab_size:
        raise ValueError(f"sample: the checkpoint's word list has {len(vocab)} tokens, its model "
                         f"{model.vocab_size} ids")
    prompt_ids = vocab.encode(prompt) if prompt else None
    if prompt_ids is not None and prompt_ids.size == 0:
        raise ValueError(f"sample: the prompt {prompt!r} holds no words")
    ids = model.sample(length, prompt_ids=prompt_ids, temperature=temperature, top_k=top_k,
                       seed=seed)
    return " ".join(t for t in (prompt, vocab.decode(ids)) if t)


class _Parser(argparse.ArgumentParser):
    def error(self, message):            # exit status 2 with a one-line message, as argparse does
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: {message}\n")


#: The commands whose parsing needs no recipe: for them ``train`` is listed without its recipes'
#: options, so that `layerkit gradcheck` does not import the recipes and their data loaders.
_WITHOUT_RECIPES = ("gradcheck", "template", "sample")


def build_parser(recipes: bool = True) -> argparse.ArgumentParser:
    """The ``layerkit`` parser: one subparser per command, each built by its own function
    (``recipes=False``: ``train`` without its recipes' sub-commands)."""
    parser = _Parser(prog="layerkit", description="layerkit: layers with handwritten backward "
                     "passes, checked by finite differences.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_gradcheck_parser(sub)
    _add_template_parser(sub)
    if recipes:
        _add_train_parser(sub)
    else:
        sub.add_parser("train", help=_TRAIN_HELP)
    _add_sample_parser(sub)
    return parser


_NAMED_INPUT_OPTIONS = {   # option -> (metavar, help); each may be repeated
    "--shape": ("NAME=D1,D2", "forward's argument NAME is a float array of this shape "
                              "(standard normal); repeat per argument"),
    "--int": ("NAME=D1,...:HIGH", "forward's argument NAME is an integer array (labels, ids) "
                                  "uniform in [0, HIGH), not differentiated"),
    "--input": ("NAME=FILE.npy", "forward's argument NAME loaded from a .npy file (exact "
                                 "values, ties)"),
    "--arg": ("NAME=JSON", "forward's argument NAME is this JSON value, passed as it is (e.g. "
                           "conv_param='{\"stride\": 2, \"pad\": 1}')"),
    "--scale": ("[NAME=]S", "multiply drawn float inputs (or the --shape input NAME) by S "
                            "(default 1)"),
    "--offset": ("[NAME=]C", "add C to drawn float inputs (or the --shape input NAME), e.g. "
                             "--offset 100 (default 0)"),
}


def _add_gradcheck_parser(sub) -> None:
    """``layerkit gradcheck [LAYER ...]``: layers checked by finite differences."""
    g = sub.add_parser(
        "gradcheck", help="check backward passes against finite differences",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check layers' backward passes against finite differences of forward.\n\n"
                    "LAYER is a built-in layer, or FILE.py:NAME / module:NAME where NAME is\n"
                    "  - a class in layerkit's contract (params and grads dicts, backward adds "
                    "into grads),\n"
                    "  - an attribute-style class (weights as attributes W, backward sets dLdW "
                    "or dW,\n    also on sub-objects),\n"
                    "  - a forward function foo_forward(...) -> (out, cache) with its partner\n"
                    "    foo_backward(dout, cache) -> (dx, dw, ...),\n"
                    "  - a loss function foo_loss(x, y) -> (loss, dx).\n"
                    "Name forward's arguments with --shape, --int, --input, --arg. Drawn inputs "
                    "are checked\ntwice: draw 1 keeps floats 0.1 away from 0, draw 2 is plain "
                    "standard normal (values\nnear 0).\n\n"
                    "Beyond finite differences, every layer is probed for broken contracts: "
                    "gradients\nassigned instead of accumulated (or the grads arrays replaced), "
                    "dy or x modified by\nbackward, a second backward after one forward that "
                    "differs, a cache kept from an\nearlier forward; the check runs at "
                    "parameters moved off constant values (gamma = 1,\nbeta = 0) and with "
                    "randomness frozen. Near-kinks and ties are resolved with smaller\nsteps; "
                    "what floating point cannot resolve is reported 'unresolved', not failed.",
        epilog="examples:\n"
               "  layerkit gradcheck                      every built-in layer and loss\n"
               "  layerkit gradcheck Conv2D --init '{\"in_channels\": 2, \"out_channels\": 3, "
               "\"kernel_size\": 3}' --input-shape 1,2,7,7\n"
               "  layerkit gradcheck my_layers.py:MyConv --init '{...}' --input-shape 2,3,8,8\n"
               "  layerkit gradcheck layers.py:conv_forward_naive --shape x=2,3,8,8 "
               "--shape w=4,3,3,3 --shape b=4 --arg conv_param='{\"stride\": 2, \"pad\": 1}'\n"
               "  layerkit gradcheck layers.py:softmax_loss --shape x=5,4 --int y=5:4\n"
               "  layerkit gradcheck mytorch/linear.py:Linear --init '{\"in_features\": 4, "
               "\"out_features\": 3}' --shape A=5,4\n"
               "  layerkit gradcheck package.module:MyConv --input-shape 4,10 --json\n"
               "exit status: 0 all passed, 1 a check failed, 2 usage error")
    g.add_argument("layers", nargs="*", metavar="LAYER",
                   help="built-in layer name, path/to/file.py:NAME or module:NAME, NAME a class "
                        "or a function (default: every built-in layer and loss)")
    g.add_argument("--init", metavar="JSON",
                   help="constructor keyword arguments as a JSON object")
    for option, (metavar, text) in _NAMED_INPUT_OPTIONS.items():
        g.add_argument(option, action="append", default=[], metavar=metavar, help=text)
    g.add_argument("--forward-kwargs", metavar="JSON",
                   help="keyword arguments of forward as a JSON object, lists as arrays (e.g. "
                        "'{\"lengths\": [3, 2]}'); float arrays among them are checked too")
    g.add_argument("--draws", type=int, choices=[1, 2], default=2,
                   help="2 (default): check a second draw that includes values near 0; 1: "
                        "only the draw kept 0.1 away from 0")
    g.add_argument("--backward", metavar="NAME",
                   help="the backward function of a forward function (default: its name with "
                        "forward replaced by backward)")
    g.add_argument("--no-grad", action="append", default=[], metavar="NAME",
                   help="functions: the array argument NAME is data, not differentiated (the X "
                        "of softmax_loss_naive(W, X, y, reg) -> (loss, dW))")
    g.add_argument("--batch-mean", action="store_true",
                   help="attribute-style classes: the course averages parameter gradients over "
                        "the batch (dLdW / N); check against that convention")
    g.add_argument("--import-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="give up importing the file after SECONDS (code at its top level that "
                        "trains or waits; default 10)")
    g.add_argument("--input-shape", action="append", default=[], metavar="N,C,...",
                   help="shape of forward's input by position (repeat for several inputs)")
    g.add_argument("--input-dtype", action="append", default=[], metavar="KIND",
                   help="float (default) or int, per --input-shape in order (int: ids in "
                        "[0, num_embeddings) or [0, 10))")
    g.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="precision of the check (default float64)")
    g.add_argument("--eps", type=float, default=None,
                   help="finite-difference step (default 1e-4 in float64, 1e-2 in float32)")
    g.add_argument("--tol", type=float, default=None,
                   help="relative-error tolerance (default 1e-7 in float64, 1e-3 in float32)")
    g.add_argument("--seed", type=int, default=0, help="seed for inputs, dy and sampled elements")
    g.add_argument("--max-coords", type=int, default=64, metavar="K",
                   help="tensors larger than K are checked on K random elements plus 4 random "
                        "directions (default 64)")
    g.add_argument("--list", action="store_true", help="list the built-in checks and exit")
    g.add_argument("--json", action="store_true", help="print a JSON report (schema in README)")
    g.add_argument("--verbose", "-v", action="store_true",
                   help="show every checked element of every tensor")
    g.add_argument("--traceback", action="store_true",
                   help="print the full traceback when a layer raises")
    g.set_defaults(func=_gradcheck)


def _add_template_parser(sub) -> None:
    """``layerkit template NAME [--style STYLE]``: print a layer skeleton."""
    from .check.templates import STYLES
    t = sub.add_parser("template", help="print a layer skeleton to fill in (homework)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Print a runnable layer skeleton: forward and backward to "
                                   "write, the equations in their docstrings, and the command "
                                   "that checks it. Example: layerkit template conv2d > "
                                   "my_conv.py",
                       epilog="styles:\n" + "\n".join(f"  {s:9} {', '.join(n)}"
                                                       for s, n in STYLES.items()))
    t.add_argument("name", nargs="?", help=", ".join(STYLES["layerkit"]))
    t.add_argument("--style", choices=sorted(STYLES), default="layerkit",
                   help="layerkit: a class with params and grads dicts (default); cs231n: a "
                        "function pair foo_forward/foo_backward; mytorch: a class with weights "
                        "as attributes and dLdW")
    t.add_argument("--list", action="store_true", help="list the templates of the style")
    t.set_defaults(func=_template)


_TRAIN_HELP = "train a model of the lecture material on real data"


def _add_train_parser(sub) -> None:
    """``layerkit train RECIPE [--option ...]``: one sub-command per recipe, whose help lists the
    options its function takes (from ``_TRAIN_OPTIONS``) with their defaults; the other options
    are accepted but hidden, so that using one says which recipe it belongs to."""
    from .train.recipes import RECIPES
    tr = sub.add_parser("train", help=_TRAIN_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Train a model with sensible defaults, show progress, print "
                                    "the final metrics and save a checkpoint.",
                        epilog="recipes:\n" + "".join(
                            f"  {name:10} {_RECIPE_SUMMARIES[name]}\n" for name in RECIPES)
                        + "options: layerkit train RECIPE --help\n"
                          "needs the train extra: pip install \".[train]\"")
    recipes = tr.add_subparsers(dest="recipe", required=True, metavar="RECIPE",
                                parser_class=_Parser)
    for name, recipe in RECIPES.items():
        r = recipes.add_parser(name, help=_RECIPE_SUMMARIES[name],
                               description=f"{name}: {_RECIPE_SUMMARIES[name]}.")
        takes = _recipe_options(recipe)
        for option, (kind, text) in _TRAIN_OPTIONS.items():
            default = "all" if takes.get(option) is None else takes[option]
            shown = f"{text} (default: {default})" if option in takes else argparse.SUPPRESS
            r.add_argument("--" + option.replace("_", "-"), type=kind, default=None, help=shown)
        r.add_argument("--quiet", action="store_true", help="no progress output")
        r.set_defaults(func=_train)


def _add_sample_parser(sub) -> None:
    """``layerkit sample CHECKPOINT``: text from a language-model checkpoint."""
    sm = sub.add_parser("sample", help="generate text from a language-model checkpoint",
                        description="Continue a prompt with a char-lstm, word-lstm or ngram "
                                    "checkpoint.")
    sm.add_argument("checkpoint")
    sm.add_argument("--prompt", default="", help="text to continue")
    sm.add_argument("--length", type=int, default=300,
                    help="characters (words, for a word-lstm checkpoint) to generate")
    sm.add_argument("--temperature", type=float, default=1.0,
                    help="below 1: safer, above 1: more surprising")
    sm.add_argument("--top-k", type=int, default=None, help="draw only from the K likeliest")
    sm.add_argument("--seed", type=int, default=None, help="seed (same seed, same text)")
    sm.set_defaults(func=_sample)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(recipes=not argv or argv[0] not in _WITHOUT_RECIPES).parse_args(argv)
    if getattr(args, "max_coords", 1) < 1:
        print("layerkit gradcheck: --max-coords must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except BrokenPipeError:          # output piped into `head` and closed early
        sys.stderr.close()
        return 0
