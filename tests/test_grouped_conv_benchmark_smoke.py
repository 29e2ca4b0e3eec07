"""Smoke test of ``benchmarks/grouped_conv.py --quick``: it runs, checks layerkit's results
against PyTorch's before timing (an assertion would fail the run), and prints its table with
positive times and the algorithm "auto" picked. Never the timings themselves (shared
machines)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "grouped_conv.py"


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"),
                    reason="timing the interpreted kernels is meaningless (NUMBA_DISABLE_JIT set)")
def test_quick_run_prints_the_table():
    res = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--im2col"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    rows = [line for line in res.stdout.splitlines() if re.match(r"\| \d+, \d+, ", line)]
    # the first row (G = 1) and the depthwise row twice: auto, then forced onto im2col
    assert [r.split("|")[3].strip() for r in rows] == ["winograd", "depthwise", "im2col"]
    for row in rows:
        cells = row.split("|")
        for cell in (cells[4], cells[6]):
            ours, theirs = (float(v) for v in cell.split("/"))
            assert ours > 0 and theirs > 0
        assert float(cells[5]) > 0 and float(cells[7]) > 0
