"""Render the notebooks: each NN_name.py (jupytext percent script, the reviewed source) is
executed with a fresh python3 kernel and written, outputs and pictures included, to
NN_name.ipynb next to it (the file a repository page shows).

    python notebooks/render.py                 # all notebooks
    python notebooks/render.py 01 04           # those whose name starts with 01 or 04

Needs the `notebooks` extra (jupytext, nbclient via nbmake, ipykernel, matplotlib). Only
nbclient is used to execute, so nbconvert is not needed. A failing cell stops with its error.
"""

import sys
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def render(script: Path) -> float:
    nb = jupytext.read(script)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    start = time.perf_counter()
    NotebookClient(nb, timeout=300, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(HERE)}}).execute()
    seconds = time.perf_counter() - start
    jupytext.write(nb, script.with_suffix(".ipynb"))
    return seconds


def main(prefixes):
    scripts = sorted(p for p in HERE.glob("[0-9][0-9]_*.py")
                     if not prefixes or p.name.startswith(tuple(prefixes)))
    for script in scripts:
        print(f"{script.name}: {render(script):.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
