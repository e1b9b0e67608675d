"""Evaluation harness: caption, 3D and network-feature metrics against known answers and brute force."""

import json

import numpy as np
import pytest

from neurodecode.evaluation.metrics import (ImageFeatures, Scores, caption_scores, chamfer_distance, f_score,
                                            n_way_top1, score_outputs)
from neurodecode.core.scores import two_way_identification


def test_caption_scores_known_answers():
    same = caption_scores(["a cat on a mat", "two dogs run"], ["a cat on a mat", "two dogs run"])
    assert same["bleu4"] == pytest.approx(1.0) and same["rouge_l"] == pytest.approx(1.0)
    # ROUGE-L by hand: LCS("the cat sat on the mat", "a cat sat on a mat") = cat sat on mat = 4 of 6 words each way
    out = caption_scores(["the cat sat on the mat"], ["a cat sat on a mat"])
    assert out["rouge_l"] == pytest.approx(4 / 6)
    # BLEU-4 by hand, one sentence, equal lengths (no brevity penalty): precisions 4/6, 2/5, 1/4, 0/3 → sacrebleu's
    # default smoothing ('exp') replaces the zero count by 1 / 2 → 1/(2·3)
    expected = np.exp(np.mean(np.log([4 / 6, 2 / 5, 1 / 4, 1 / 6])))
    assert out["bleu4"] == pytest.approx(expected, rel=1e-6)
    multi = caption_scores(["the cat sat on the mat"], [["a cat sat on a mat", "the cat sat on the mat"]])
    assert multi["rouge_l"] == pytest.approx(1.0) and multi["bleu4"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"field 'refs': expected one reference .* per prediction \(2\), got 1"):
        caption_scores(["a", "b"], ["a"])


def test_caption_clip_similarity_with_a_tiny_open_clip(embedder):
    out = caption_scores(["a red square", "a blue circle"], ["a red square", "a blue circle"], embedder=embedder)
    assert out["clip_text_similarity"] == pytest.approx(1.0, abs=1e-5) and out["clip_text_two_way"] == 1.0


def brute_chamfer(a, b):
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    return d.min(1).mean() + d.min(0).mean(), d


def test_chamfer_and_f_score_against_brute_force():
    assert chamfer_distance([[0, 0, 0]], [[1, 0, 0]])[0] == pytest.approx(2.0)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 50, 3)), rng.normal(size=(3, 40, 3))
    got = chamfer_distance(a, b)
    for i in range(3):
        ref, d = brute_chamfer(a[i], b[i])
        assert got[i] == pytest.approx(ref)
        p, r = (d.min(1) < 0.3).mean(), (d.min(0) < 0.3).mean()
        assert f_score(a[i], b[i], 0.3)[0] == pytest.approx(2 * p * r / (p + r))
    assert f_score(a, a, 1e-6).tolist() == [1.0, 1.0, 1.0]
    assert chamfer_distance(a, a, squared=True).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"field 'pred': expected point clouds \(n_points, 3\)"):
        chamfer_distance(rng.normal(size=(5, 2)), b[0])
    with pytest.raises(ValueError, match="field 'pred': expected 3 point clouds like 'true', got 2"):
        f_score(a[:2], b)


def test_n_way_top1():
    rng = np.random.default_rng(1)
    T = rng.normal(size=(30, 8))
    assert n_way_top1(T, T, n_way=10) == 1.0
    P = T + 1.5 * rng.normal(size=T.shape)
    approx = n_way_top1(P, T, n_way=2, n_trials=3000, seed=2)
    assert approx == pytest.approx(two_way_identification(P, T, metric="cosine"), abs=0.02)
    assert n_way_top1(P, T, n_way=5, seed=3) == n_way_top1(P, T, n_way=5, seed=3)
    with pytest.raises(ValueError, match="field 'n_way': expected 2 <= n_way <= n_items = 30, got 31"):
        n_way_top1(P, T, n_way=31)


def test_image_features_random_alexnet():
    net = ImageFeatures("alexnet", "features.4", pretrained=False)
    imgs = np.random.default_rng(0).uniform(size=(4, 28, 28))
    F = net(imgs)
    assert F.shape == (4, 192 * 27 * 27)  # conv2 + ReLU of AlexNet at 224 px
    assert two_way_identification(net(imgs), F) == 1.0
    with pytest.raises(ValueError, match=r"field 'layer': expected a node of alexnet .* got 'features.99'"):
        ImageFeatures("alexnet", "features.99", pretrained=False)
    with pytest.raises(ValueError, match="field 'model': expected a torchvision classification model, got 'nonet'"):
        ImageFeatures("nonet", pretrained=False)


def test_score_outputs_every_kind_and_the_table(tmp_path):
    rng = np.random.default_rng(0)
    T = rng.normal(size=(20, 16))
    P = T + 0.5 * rng.normal(size=T.shape)
    imgs = rng.uniform(size=(6, 16, 16))
    clouds = rng.normal(size=(6, 64, 3))
    scores = (score_outputs("retrieval", P, T, k=[1, 5], pool_size=10, n_repeats=5, pipeline="ridge")
              + score_outputs("classification", ["a", "b", "a", "b"], ["a", "b", "b", "b"], pipeline="ridge")
              + score_outputs("images", imgs, imgs, pipeline="ridge",
                              networks=[("pixels", lambda x: x.reshape(len(x), -1))])
              + score_outputs("captions", ["a cat"], ["a cat"], pipeline="ridge")
              + score_outputs("meshes", clouds, clouds, render_features=(T[:6], T[:6]), pipeline="ridge"))
    tab = scores.table.set_index(["kind", "metric"])
    assert tab.loc[("retrieval", "image_top1"), "chance"] == pytest.approx(0.1)
    assert tab.loc[("retrieval", "brain_top5"), "value"] >= tab.loc[("retrieval", "brain_top1"), "value"]
    assert tab.loc[("classification", "accuracy"), "value"] == 0.75
    assert tab.loc[("images", "two_way[pixels]"), "value"] == 1.0 and tab.loc[("images", "ssim"), "value"] == 1.0
    assert tab.loc[("meshes", "chamfer"), "value"] == 0.0 and tab.loc[("meshes", "2_way_top1"), "value"] == 1.0
    assert "10_way_top1" not in tab.index.get_level_values(1)  # only 6 objects
    assert list(scores.table.columns) == ["pipeline", "kind", "metric", "value", "chance", "n_items", "seed"]
    # same seed, same pools
    again = score_outputs("retrieval", P, T, k=[1, 5], pool_size=10, n_repeats=5, pipeline="ridge")
    assert again.table.equals(scores.table.iloc[:5].reset_index(drop=True))
    assert len(json.loads(scores.to_json(tmp_path / "s.json"))) == len(scores.table)
    scores.plot(tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000
    assert isinstance(scores, Scores)


def test_score_outputs_bad_input():
    T = np.eye(4)
    with pytest.raises(ValueError, match=r"field 'k': expected k <= the candidate pool \(4 items\), got 5; the "
                                         "gallery is smaller than k"):
        score_outputs("retrieval", T, T, k=5)
    with pytest.raises(ValueError, match="field 'kind': expected one of"):
        score_outputs("audio", T, T)
    with pytest.raises(ValueError, match=r"field 'pred': expected images of the shape of 'true' \(2, 4, 4\)"):
        score_outputs("images", np.zeros((2, 4, 5)), np.zeros((2, 4, 4)))


@pytest.mark.slow
def test_caption_scores_leave_the_root_logger_alone():
    """rouge_score logs through absl, which would install a root console handler (every neurodecode line twice)."""
    import subprocess
    import sys

    code = ("import logging; from neurodecode.evaluation.metrics import caption_scores; "
            "caption_scores(['a red square'], ['a red square']); print(len(logging.getLogger().handlers))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0"


def test_image_chance_is_the_score_of_mismatched_pairs():
    """PixCorr's chance is the mean over every mismatched (prediction, other stimulus) pair, repeats of one stimulus
    left out; a prediction that is only the stimuli's mean image scores at that chance, not above it."""
    from neurodecode.evaluation.metrics import mismatched_chance

    rng = np.random.default_rng(0)
    base = rng.uniform(size=(12, 12))
    true = base + 0.3 * rng.uniform(size=(6, 12, 12))
    true = np.concatenate([true, true[:2]])                     # stimuli 0 and 1 shown twice
    pred = true + 0.2 * rng.standard_normal(true.shape)
    chance = mismatched_chance(pred, true)
    r = np.corrcoef(pred.reshape(8, -1), true.reshape(8, -1))[:8, 8:]
    same = np.array([[np.array_equal(a, b) for b in true] for a in true])
    assert chance["pixcorr"] == pytest.approx(r[~same].mean())
    assert 0.3 < chance["pixcorr"] < r[same].mean()             # well above 0: the shared base image
    assert "ssim" in chance and np.isfinite(chance["ssim"])
    mean_only = np.broadcast_to(true.mean(0), true.shape)
    table = score_outputs("images", mean_only, true).table.set_index("metric")
    assert table.loc["pixcorr", "value"] == pytest.approx(table.loc["pixcorr", "chance"], abs=0.05)
    one = mismatched_chance(pred[:1], true[:1])
    assert np.isnan(one["pixcorr"])
