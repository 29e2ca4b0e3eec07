"""Smoke test of ``benchmarks/import_order.py``: one order, one sample, its JSON has every case.

Only that it runs and reports positive times: never the timings themselves (shared machines).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "import_order.py"


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"),
                    reason="timing the interpreted kernels is meaningless (NUMBA_DISABLE_JIT set)")
def test_one_order_one_round(tmp_path):
    out = tmp_path / "orders.json"
    res = subprocess.run([sys.executable, str(SCRIPT), "--orders", "numpy", "--rounds", "1",
                          "--repeat", "1", "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    table = json.loads(out.read_text())["table"]
    assert [row["case"].split()[0] for row in table] == ["LeNet", "LeNet", "LSTM"]
    for row in table:
        cell = row["numpy"]
        assert cell["layerkit_ms"] > 0 and cell["torch_ms"] > 0 and cell["ratio"] > 0
    assert "numpy first" in res.stdout
