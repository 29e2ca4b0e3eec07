"""Cold and warm start of ``layerkit gradcheck``: seconds to the first output line and in total.

Run from the repository root::

    python benchmarks/cold_start.py            # one cold run, then one warm run
    python benchmarks/cold_start.py --json out.json

"Cold" is a subprocess ``python -m layerkit gradcheck`` with a fresh, empty NUMBA_CACHE_DIR
(what a first run after ``pip install`` meets, without the minutes a fresh virtual environment
takes to build); "warm" runs it again on the cache the cold run left. The first line is the
first line on stdout or stderr, timed from the start of the subprocess as it arrives.
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


def measure(args: list[str] | None = None) -> dict:
    """Cold then warm ``python -m layerkit gradcheck ARGS`` in one fresh cache folder."""
    argv = [sys.executable, "-m", "layerkit", "gradcheck"] + list(args or [])
    out = {}
    with tempfile.TemporaryDirectory(prefix="layerkit-cold-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "warm"):
            out[label] = timed_run(argv, env)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("layers", nargs="*", help="passed on to layerkit gradcheck (default: all)")
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    a = p.parse_args(argv)
    res = measure(a.layers)
    for label, r in res.items():
        print(f"{label}: first line {r['first_line_s']:.2f} s, total {r['total_s']:.2f} s, "
              f"exit {r['returncode']}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0 if all(r["returncode"] == 0 for r in res.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
