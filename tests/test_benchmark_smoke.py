"""Smoke test of the benchmark command: ``benchmarks/run.py --quick`` runs and writes its JSON.

Only that it runs and reports positive times: never the timings themselves (shared machines).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"

ROW_KEYS = {"name", "op", "shape", "threads", "order", "layerkit_ms", "torch_ms", "ratio", "gflop",
            "layerkit_gflops", "torch_gflops", "peak_gflops", "layerkit_peak_fraction",
            "throughput_unit", "layerkit_throughput", "torch_throughput"}


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"),
                    reason="timing the interpreted kernels is meaningless (NUMBA_DISABLE_JIT set)")
def test_quick_benchmark_writes_json(tmp_path):
    out = tmp_path / "results.json"
    res = subprocess.run([sys.executable, str(RUN), "--quick", "--threads", "2", "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    data = json.loads(out.read_text())
    assert {"meta", "peak_gflops", "results", "jit", "memory"} <= set(data)
    assert data["meta"]["threads"] == [2] and data["meta"]["dtype"] == "float32"
    assert data["peak_gflops"]["2"] > 0

    rows = data["results"]
    names = {r["name"] for r in rows}
    for expected in ("Conv2D LeNet conv1", "Conv2D VGG block", "Conv2D ImageNet first layer",
                     "Conv1D 128->128 k=5", "MaxPool2D", "Linear 16->8", "RNN", "LSTM", "GRU",
                     "LeNet-5 training step", "char-LSTM training step", "CharLSTM.sample",
                     "Seq2Seq.greedy_decode"):
        assert expected in names, (expected, sorted(names))
    for r in rows:
        assert ROW_KEYS <= set(r), r
        assert r["threads"] == 2
        assert r["layerkit_ms"] > 0 and r["torch_ms"] > 0 and r["ratio"] > 0, r
        if r["gflop"] is not None:
            assert r["layerkit_gflops"] > 0 and r["layerkit_peak_fraction"] > 0, r
    assert {r["op"] for r in rows} == {"fwd", "fwd+bwd", "train step", "sample"}
    assert {r["order"] for r in rows} == {"natural", "layerkit-first"}
    for r in rows:
        if r["op"] in ("train step", "sample"):
            assert r["layerkit_throughput"] > 0 and r["torch_throughput"] > 0, r

    jit = data["jit"]
    for phase in ("cold", "warm"):
        assert jit[phase]["import layerkit"] > 0
        assert all(v >= 0 for v in jit[phase].values())

    assert data["memory"], "no memory measurement"
    for m in data["memory"]:
        assert m["peak_rss_mb"] > 0 and m["step_peak_mb"] >= 0, m
    assert "wrote" in res.stdout
