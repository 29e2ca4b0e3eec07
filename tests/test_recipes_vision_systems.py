"""`layerkit train caption` and `layerkit train segnet` on a few steps: they run, report their
metrics, and write a checkpoint that loads and gives the same outputs. The full-length runs
reach their targets in minutes, not here."""


import numpy as np

from layerkit.checkpoint import load
from layerkit.cli import main
from layerkit.data import digit_canvases

from helpers import compiled



@compiled
def test_caption_recipe_runs_and_its_checkpoint_decodes_the_same(tmp_path, capsys):
    out = str(tmp_path / "caption.npz")
    assert main(["train", "caption", "--steps", "3", "--batch-size", "8", "--limit", "12",
                 "--hidden-size", "16", "--embedding-dim", "8", "--beam-size", "2",
                 "--out", out, "--quiet"]) == 0
    summary = capsys.readouterr().out
    assert "caption: exact_match" in summary and "beam2_exact_match" in summary
    model = load(out)
    metrics = model.meta["metrics"]
    assert 0 <= metrics["exact_match"] <= 1 and 0 <= metrics["bleu4"] <= 1
    assert set(metrics) >= {"accuracy_1", "beam2_bleu4", "train_loss"}
    assert model.meta["vocab"][3:5] == ["zero", "one"]
    # the checkpoint decodes what the recipe scored: recompute the exact match from it
    test = digit_canvases(12, split="test")
    got = model.greedy_decode(test.images, 5, test.BOS, test.EOS, pad=test.PAD)
    assert np.mean(np.all(got == test.captions[:, 1:], axis=1)) == metrics["exact_match"]


@compiled
def test_segnet_recipe_runs_and_its_checkpoint_segments_the_same(tmp_path, capsys):
    out = str(tmp_path / "segnet.npz")
    assert main(["train", "segnet", "--steps", "2", "--batch-size", "4", "--limit", "8",
                 "--decoder", "transpose", "--out", out, "--quiet"]) == 0
    assert "segnet (transpose): mean_iou" in capsys.readouterr().out
    model = load(out)
    from layerkit.train.recipe_segnet import segmentation_scores
    scores = segmentation_scores(model.eval(), digit_canvases(8, split="test"))
    assert scores["mean_iou"] == model.meta["metrics"]["mean_iou"]
    assert len(model.meta["iou_per_class"]) == 11


def test_system_recipe_options_are_checked_first(capsys):
    assert main(["train", "segnet", "--decoder", "bilinear", "--quiet"]) == 2
    assert "segnet: decoder must be one of 'unpool', 'transpose'" in capsys.readouterr().err
    assert main(["train", "caption", "--beam-size", "0", "--quiet"]) == 2
    assert "caption: beam_size must be a positive integer, got 0" in capsys.readouterr().err
    assert main(["train", "caption", "--decoder", "unpool"]) == 2
    assert "--decoder does not apply here" in capsys.readouterr().err
