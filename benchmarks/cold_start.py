"""Cold and warm start of ``layerkit gradcheck``: seconds to the first output line and in total.

Run from the repository root::

    python benchmarks/cold_start.py               # one cold run, then one warm run
    python benchmarks/cold_start.py --fresh-venv  # the same in a new venv: `pip install .` first
    python benchmarks/cold_start.py --json out.json

"Cold" is a subprocess ``python -m layerkit gradcheck`` with a fresh, empty NUMBA_CACHE_DIR
(what a first run after ``pip install`` meets); "warm" runs it again on the cache the cold run
left. With ``--fresh-venv`` both run the ``layerkit`` command of a new virtual environment into
which ``pip install .`` has installed the repository, as the README's first command does (the
install's own time is reported apart): only numpy and numba there, where the current
environment may hold more (scipy, which numba then loads too). The first line is the first line
on stdout or stderr, timed from the start of the subprocess as it arrives.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_run(argv: list[str], env: dict) -> dict:
    """Run ``argv``; seconds to its first output line (either stream) and to its exit."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    for stream in (proc.stdout, proc.stderr):
        sel.register(stream, selectors.EVENT_READ)
    first, open_streams, chunks = None, 2, {proc.stdout: b"", proc.stderr: b""}
    while open_streams:
        for key, _ in sel.select():
            data = os.read(key.fileobj.fileno(), 65536)
            if not data:
                sel.unregister(key.fileobj)
                open_streams -= 1
                continue
            chunks[key.fileobj] += data
            if first is None and b"\n" in data:
                first = time.perf_counter() - t0
    code = proc.wait()
    total = time.perf_counter() - t0
    return {"first_line_s": first, "total_s": total, "returncode": code,
            "first_line": (chunks[proc.stderr] or chunks[proc.stdout]).decode().split("\n")[0]}


def fresh_venv(folder: Path) -> tuple[Path, float]:
    """A new virtual environment in ``folder`` with ``pip install ROOT`` done: (its ``layerkit``
    command, seconds the install took)."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    t0 = time.perf_counter()
    subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT)],
                   check=True, capture_output=True)
    return folder / "bin" / "layerkit", time.perf_counter() - t0


def measure(args: list[str] | None = None, *, venv: bool = False) -> dict:
    """Cold then warm ``layerkit gradcheck ARGS`` in one fresh cache folder: this interpreter's
    ``python -m layerkit``, or (``venv``) the command of a fresh virtual environment."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="layerkit-cold-") as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "numba-cache"))
        if venv:
            command, out["pip install s"] = fresh_venv(Path(tmp) / "venv")
            argv = [str(command), "gradcheck"]
            env.pop("PYTHONPATH", None)
        else:
            argv = [sys.executable, "-m", "layerkit", "gradcheck"]
        for label in ("cold", "warm"):
            out[label] = timed_run(argv + list(args or []), env)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("layers", nargs="*", help="passed on to layerkit gradcheck (default: all)")
    p.add_argument("--fresh-venv", action="store_true", help="run the command of a new virtual "
                   "environment with `pip install .` done (as the README's first command)")
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    a = p.parse_args(argv)
    res = measure(a.layers, venv=a.fresh_venv)
    if "pip install s" in res:
        print(f"pip install . into a new venv: {res['pip install s']:.1f} s")
    runs = {k: r for k, r in res.items() if k in ("cold", "warm")}
    for label, r in runs.items():
        print(f"{label}: first line {r['first_line_s']:.2f} s, total {r['total_s']:.2f} s, "
              f"exit {r['returncode']}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0 if all(r["returncode"] == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
