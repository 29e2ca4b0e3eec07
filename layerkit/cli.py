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

JSON_SCHEMA = "layerkit.gradcheck/1"


def _colour(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def _targets(args):
    """(name, config, build, is_builtin_case) for everything to check;
    build(rng) -> (layer, inputs[, forward_kwargs])."""
    from .check import builtin as builtin_checks
    from .check.user_files import (UsageError, build_layer, load_class, make_inputs, parse_init,
                              parse_shape)

    known = builtin_checks.names()
    custom = args.init is not None or args.input_shape
    if not args.layers:
        if custom:
            raise UsageError("--init and --input-shape need a layer to build: name it, e.g. "
                             "layerkit gradcheck Conv2D --init '{...}' --input-shape 1,2,7,7")
        return [(c.name, c.config, c.build, True) for c in builtin_checks.CASES]
    init = parse_init(args.init)
    shapes = [parse_shape(s) for s in args.input_shape]
    dtype = np.dtype(args.dtype)
    targets = []
    for ref in args.layers:
        if ":" not in ref and not custom and not ref.endswith(".py"):
            if ref not in known:
                raise UsageError(f"no built-in layer named {ref}; choose from {', '.join(known)}, "
                                 "or name a class of your own as my_layers.py:MyLayer")
            targets += [(c.name, c.config, c.build, True)
                        for c in builtin_checks.CASES if c.name == ref]
            continue
        cls = load_class(ref)
        config = ", ".join([f"{k}={v}" for k, v in init.items()]
                           + ["x: " + "x".join(map(str, s)) for s in shapes])

        def build(rng, cls=cls):
            layer = build_layer(cls, init, dtype, args.seed)
            return layer, make_inputs(layer, shapes, args.input_dtype, dtype, rng)
        targets.append((ref if ":" in ref else cls.__name__, config, build, False))
    return targets


def _gradcheck(args) -> int:
    from .check import builtin as builtin_checks
    from .check import ContractError, explain, format_table, gradcheck
    from .check.user_files import UsageError, raised_in_check

    if args.list:
        for name in builtin_checks.names():
            configs = [c.config for c in builtin_checks.CASES if c.name == name]
            print(f"{name}: " + "; ".join(configs))
        return 0
    dtype = np.dtype(args.dtype)
    results = []
    try:
        for name, config, build, is_case in _targets(args):
            # build(rng) -> (layer, inputs) or (layer, inputs, forward_kwargs), e.g. {"h0": ...}
            layer, inputs, *extra = build(np.random.default_rng(args.seed))
            if is_case and dtype != np.float64 and hasattr(layer, "astype"):
                layer.astype(dtype)          # built-in configurations are float64
            try:
                report = gradcheck(layer, inputs, eps=args.eps, tol=args.tol, seed=args.seed,
                                   max_coords=args.max_coords, dtype=dtype,
                                   forward_kwargs=extra[0] if extra else None)
            except ContractError as e:
                raise UsageError(str(e)) from None
            except Exception as e:
                raise raised_in_check(e, layer) from e
            results.append((name, config, report))
    except UsageError as e:
        return _usage_error(args, e)

    failed = [(n, c) for n, c, r in results if not r.passed]
    if args.json:
        print(json.dumps({
            "schema": JSON_SCHEMA, "passed": not failed, "dtype": str(dtype),
            "tol": results[0][2].tol, "eps": results[0][2].eps, "seed": args.seed, "error": None,
            "checks": [dict(name=n, config=c, **r.to_dict(elements=args.verbose))
                       for n, c, r in results],
        }, indent=2))
        return 1 if failed else 0
    print(format_table(results, colour=_colour(sys.stdout)))
    worst = max((r.max_rel_error for _, _, r in results), default=float("nan"))
    print(f"\n{len(results)} configuration(s), {sum(len(r.tensors) for _, _, r in results)} "
          f"tensors; worst relative error {worst:.2e} (tolerance {results[0][2].tol:g}, {dtype})")
    details = explain(results, verbose=args.verbose)
    if details:
        print("\n" + details)
    if failed:
        print("\nFAILED: " + ", ".join(f"{n} [{c}]" if c else n for n, c in failed))
    else:
        print("all passed")
    return 1 if failed else 0


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
        for name in templates.names():
            print(f"{name:10} {templates.summary(name)}")
        return 0
    if args.name not in templates.names():
        print(f"layerkit template: no template named {args.name!r}; choose from "
              f"{', '.join(templates.names())}", file=sys.stderr)
        return 2
    sys.stdout.write(templates.source(args.name))
    return 0


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
}
_RECIPE_SUMMARIES = {
    "lenet": "LeNet-5 on MNIST-5k (test accuracy)",
    "char-lstm": "character LSTM on Shakespeare (validation perplexity vs a 5-gram)",
    "ngram": "character n-gram on Shakespeare (validation perplexity)",
    "seq2seq": "LSTM encoder-decoder reversing digit strings (exact-sequence accuracy)",
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
        text = recipes.sample(model, prompt=args.prompt, length=args.length,
                              temperature=args.temperature, top_k=args.top_k, seed=args.seed)
    except (FileNotFoundError, ValueError, TypeError) as e:
        print(f"layerkit sample: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):            # exit status 2 with a one-line message, as argparse does
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``layerkit`` parser: one subparser per command, each built by its own function."""
    parser = _Parser(prog="layerkit", description="layerkit: layers with handwritten backward "
                     "passes, checked by finite differences.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_gradcheck_parser(sub)
    _add_template_parser(sub)
    _add_train_parser(sub)
    _add_sample_parser(sub)
    return parser


def _add_gradcheck_parser(sub) -> None:
    """``layerkit gradcheck [LAYER ...]``: layers checked by finite differences."""
    g = sub.add_parser(
        "gradcheck", help="check backward passes against finite differences",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check layers' backward passes against finite differences of forward.",
        epilog="examples:\n"
               "  layerkit gradcheck                      every built-in layer and loss\n"
               "  layerkit gradcheck Conv2D --init '{\"in_channels\": 2, \"out_channels\": 3, "
               "\"kernel_size\": 3}' --input-shape 1,2,7,7\n"
               "  layerkit gradcheck my_layers.py:MyConv --init '{...}' --input-shape 2,3,8,8\n"
               "  layerkit gradcheck package.module:MyConv --input-shape 4,10 --json\n"
               "exit status: 0 all passed, 1 a check failed, 2 usage error")
    g.add_argument("layers", nargs="*", metavar="LAYER",
                   help="built-in layer name, path/to/file.py:Class or module:Class "
                        "(default: every built-in layer and loss)")
    g.add_argument("--init", metavar="JSON",
                   help="constructor keyword arguments as a JSON object")
    g.add_argument("--input-shape", action="append", default=[], metavar="N,C,...",
                   help="shape of forward's input (repeat for several inputs)")
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
    """``layerkit template NAME``: print a layer skeleton."""
    t = sub.add_parser("template", help="print a layer skeleton to fill in (homework)",
                       description="Print a runnable layer skeleton: constructor and parameters "
                                   "done, forward and backward to write. "
                                   "Example: layerkit template conv2d > my_conv.py")
    t.add_argument("name", nargs="?", help="conv2d, linear, relu, softmax, maxpool2d, rnn, lstm")
    t.add_argument("--list", action="store_true", help="list the templates")
    t.set_defaults(func=_template)


def _add_train_parser(sub) -> None:
    """``layerkit train RECIPE [--option ...]``: one sub-command per recipe, whose help lists the
    options its function takes (from ``_TRAIN_OPTIONS``) with their defaults; the other options
    are accepted but hidden, so that using one says which recipe it belongs to."""
    from .train.recipes import RECIPES
    tr = sub.add_parser("train", help="train a model of the lecture material on real data",
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
                        description="Continue a prompt with a char-lstm or ngram checkpoint.")
    sm.add_argument("checkpoint")
    sm.add_argument("--prompt", default="", help="text to continue")
    sm.add_argument("--length", type=int, default=300, help="characters to generate")
    sm.add_argument("--temperature", type=float, default=1.0,
                    help="below 1: safer, above 1: more surprising")
    sm.add_argument("--top-k", type=int, default=None, help="draw only from the K likeliest")
    sm.add_argument("--seed", type=int, default=None, help="seed (same seed, same text)")
    sm.set_defaults(func=_sample)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "max_coords", 1) < 1:
        print("layerkit gradcheck: --max-coords must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except BrokenPipeError:          # output piped into `head` and closed early
        sys.stderr.close()
        return 0
