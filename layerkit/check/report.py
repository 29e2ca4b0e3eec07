"""The result of a gradient check: per-tensor results (:class:`TensorCheck`), contract problems
(:class:`Problem`), the report of one layer (:class:`GradcheckReport`) and its text forms (a
table, and plain-words explanations of every failure)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields

WORST = 5          # worst elements listed per failing tensor


class Problem(str):
    """A contract problem found while checking: the message, plus the name of its pattern."""

    def __new__(cls, pattern: str, message: str):
        obj = super().__new__(cls, message)
        obj.pattern = pattern
        return obj

    def to_dict(self) -> dict:
        return {"pattern": self.pattern, "message": str(self)}


@dataclass
class TensorCheck:
    """Result of checking one gradient (an input or a parameter)."""

    name: str
    shape: tuple
    status: str                  # "pass", "fail", "vacuous", "kink" or "unresolved"
    max_rel_error: float
    worst: str                   # index of the worst element, or "dir k" for a direction
    analytic: float
    numeric: float
    n_coords: int
    n_directions: int
    n_kinks: int
    n_unresolved: int = 0        # elements whose numeric estimate did not converge enough
    pattern: str | None = None   # named diagnosis of a failure ("sign flipped", ...)
    diagnosis: str = ""          # the same in plain words, with the numbers
    # every checked element: {"index", "analytic", "numeric", "rel_error" (None at a kink or
    # unresolved), "kink", "unresolved", "coord"}
    elements: list = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def worst_elements(self, k: int = WORST) -> list:
        """The ``k`` elements with the largest relative error (kinks left out)."""
        ranked = sorted((e for e in self.elements if e["rel_error"] is not None),
                        key=lambda e: -e["rel_error"])
        return ranked[:k]

    def to_dict(self, *, elements: bool = False) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "elements"}
        d["shape"] = list(self.shape)
        d["max_rel_error"] = _finite_or_none(self.max_rel_error)
        d["worst_elements"] = self.worst_elements()
        if elements:
            d["elements"] = self.elements
        return d


def _finite_or_none(v):
    return None if v is None or not math.isfinite(v) else v


@dataclass
class GradcheckReport:
    """All checks of one layer: per-tensor results plus contract problems found on the way."""

    layer: str
    tol: float
    eps: float
    dtype: str = "float64"
    tensors: list = field(default_factory=list)
    problems: list = field(default_factory=list)     # of Problem (str with a .pattern)

    @property
    def passed(self) -> bool:
        return not self.problems and bool(self.tensors) and all(t.passed for t in self.tensors)

    @property
    def max_rel_error(self) -> float:
        errs = [t.max_rel_error for t in self.tensors if not math.isnan(t.max_rel_error)]
        return max(errs) if errs else float("nan")

    def to_dict(self, *, elements: bool = False) -> dict:
        """The report as plain data (the JSON schema in the README; NaN becomes None)."""
        return {"layer": self.layer, "passed": self.passed, "dtype": self.dtype,
                "tol": self.tol, "eps": self.eps,
                "problems": [p.to_dict() if isinstance(p, Problem) else
                             {"pattern": None, "message": str(p)} for p in self.problems],
                "tensors": [t.to_dict(elements=elements) for t in self.tensors]}

    def to_json(self, *, elements: bool = False) -> str:
        return json.dumps(self.to_dict(elements=elements), indent=2)

    def table(self) -> str:
        return format_table([(" ".join(self.layer.split()), "", self)])

    def explain(self, *, verbose: bool = False) -> str:
        """Plain words for everything that failed: problems, then each failing tensor's
        diagnosis and its worst elements (every checked element with ``verbose``)."""
        return explain([(" ".join(self.layer.split()), "", self)], verbose=verbose)

    def __str__(self) -> str:
        text = self.table()
        more = self.explain()
        return text + ("\n\n" + more if more else "")


def _status_word(t) -> str:
    status = t.status.upper() if t.status != "pass" else "pass"
    if t.n_kinks and t.status != "kink":
        status += f" ({t.n_kinks} kinks skipped)"
    if t.n_unresolved and t.status != "unresolved":
        status += f" ({t.n_unresolved} unresolved)"
    if t.pattern:
        status += f": {t.pattern}"
    return status


def format_table(reports, *, colour: bool = False) -> str:
    """A text table of (layer name, configuration, report) triples, one row per checked tensor.
    ``colour`` marks pass green and failures red with ANSI codes (for a terminal)."""
    header = ("layer", "config", "tensor", "max rel err", "worst", "analytic", "numeric", "status")
    rows = []
    for layer, config, rep in reports:
        for p in rep.problems:
            rows.append((layer, config, "-", "-", "-", "-", "-",
                         "FAIL: " + (p.pattern if isinstance(p, Problem) else p)))
        for t in rep.tensors:
            rows.append((layer, config, t.name, f"{t.max_rel_error:.2e}", t.worst,
                         f"{t.analytic:.6g}", f"{t.numeric:.6g}", _status_word(t)))
    if all(config == "" for _, config, _ in reports):      # a single report: no config column
        header, rows = header[:1] + header[2:], [r[:1] + r[2:] for r in rows]
    widths = [max(len(str(r[j])) for r in [header] + rows) for j in range(len(header))]

    def fmt(r):
        line = "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()
        if colour and r is not header and r[-1] != "-" * widths[-1]:
            code = "32" if r[-1].startswith("pass") else "31"
            line = f"\033[{code}m{line}\033[0m"
        return line
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def explain(reports, *, verbose: bool = False) -> str:
    """Plain-words diagnosis of every failed check in (layer, configuration, report) triples."""
    blocks = []
    for layer, config, rep in reports:
        where = f"{layer} [{config}]" if config else layer
        for p in rep.problems:
            blocks.append(f"{where}: {p}")
        for t in rep.tensors:
            if t.passed and not verbose:
                continue
            lines = [f"{where}, gradient of {t.name} {tuple(t.shape)}: {t.status}"
                     + (f" ({t.pattern})" if t.pattern else "")]
            if t.diagnosis:
                lines.append("  " + t.diagnosis)
            shown = t.elements if verbose else t.worst_elements()
            if shown:
                lines.append(f"  {'element':>16}  {'analytic':>13}  {'numeric':>13}  rel error")
                for e in shown:
                    rel = (f"{e['rel_error']:.2e}" if e["rel_error"] is not None else
                           "unresolved" if e.get("unresolved") else "kink")
                    lines.append(f"  {e['index']:>16}  {e['analytic']:>13.6g}  "
                                 f"{e['numeric']:>13.6g}  {rel}")
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
