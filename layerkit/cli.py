"""The ``layerkit`` command line (``layerkit ...`` or ``python -m layerkit ...``)."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _gradcheck(args) -> int:
    from . import builtin_checks
    from .gradcheck import format_table, gradcheck

    known = builtin_checks.names()
    if args.list:
        for name in known:
            configs = [c.config for c in builtin_checks.CASES if c.name == name]
            print(f"{name}: " + "; ".join(configs))
        return 0
    unknown = [n for n in args.layers if n not in known]
    if unknown:
        print(f"layerkit gradcheck: no built-in layer named {', '.join(unknown)}; "
              f"choose from {', '.join(known)}", file=sys.stderr)
        return 2
    cases = [c for c in builtin_checks.CASES if not args.layers or c.name in args.layers]
    results = []
    for case in cases:
        # build(rng) -> (layer, inputs) or (layer, inputs, forward_kwargs), e.g. {"h0": ...}
        layer, inputs, *extra = case.build(np.random.default_rng(args.seed))
        report = gradcheck(layer, inputs, eps=args.eps, tol=args.tol, seed=args.seed,
                           forward_kwargs=extra[0] if extra else None)
        results.append((case, report))
    failed = [(c, r) for c, r in results if not r.passed]
    if args.json:
        print(json.dumps({
            "passed": not failed, "tol": args.tol, "eps": args.eps,
            "checks": [dict(name=c.name, config=c.config, **r.to_dict()) for c, r in results],
        }, indent=2))
    else:
        print(format_table([(c.name, c.config, r) for c, r in results]))
        worst = max(r.max_rel_error for _, r in results)
        print(f"\n{len(results)} configurations, {sum(len(r.tensors) for _, r in results)} tensors; "
              f"worst relative error {worst:.2e} (tolerance {args.tol:g}, float64)")
        if failed:
            print("FAILED: " + ", ".join(f"{c.name} [{c.config}]" for c, _ in failed))
        else:
            print("all passed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    from .gradcheck import DEFAULT_EPS, DEFAULT_TOL

    parser = argparse.ArgumentParser(prog="layerkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gradcheck", help="check backward passes against finite differences",
                       description="Check every built-in layer and loss (or the named ones) "
                                   "against finite differences in float64.")
    g.add_argument("layers", nargs="*", metavar="LAYER", help="built-in layer names (default: all)")
    g.add_argument("--list", action="store_true", help="list the built-in checks and exit")
    g.add_argument("--json", action="store_true", help="print a JSON report instead of a table")
    g.add_argument("--tol", type=float, default=DEFAULT_TOL, help="relative-error tolerance")
    g.add_argument("--eps", type=float, default=DEFAULT_EPS, help="finite-difference step")
    g.add_argument("--seed", type=int, default=0, help="seed for inputs and upstream gradients")
    g.set_defaults(func=_gradcheck)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:          # output piped into `head` and closed early
        sys.stderr.close()
        return 0
